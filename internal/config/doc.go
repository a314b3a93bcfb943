// Package config defines zerohop's configuration: the model, its built-in
// defaults, loading and validating the YAML file, and watching the file
// for changes.
//
// zerohop reads one YAML file, usually mounted from a Kubernetes
// ConfigMap. Without a file it runs on Default(): a forward proxy on
// 127.0.0.1:8089 with a 64MiB cache in /var/run/zerohop. A file is
// overlaid on the defaults: sections and fields it leaves out keep their
// defaults, and a list it sets replaces the default list, each element
// starting from the element defaults (an endpoint's weight is 1 unless
// set). Environment overrides are the CLI's business; it applies them to
// the loaded Config and calls Validate again.
//
// # Errors
//
// Load and Parse report every problem at once, as an ErrorList whose
// message has one line per problem:
//
//	zerohop.yaml:12: routes[1].cluster: unknown cluster "api2" (did you mean "api"?)
//	zerohop.yaml:15: cache.region_size: region_size 32MiB is too large for size 64MiB: ...
//	zerohop.yaml:21: routes[2].timeuot: unknown field (did you mean "timeout"?)
//
// Unknown keys are errors, so typos are not silently ignored. Keys reserved
// for features not built yet (auth, egress, limits, health_check, retries, ...)
// are rejected with "not supported yet". Top-level keys starting with "x-"
// are ignored and may hold YAML anchors for "<<" merges.
//
// # Values
//
// Durations use Go syntax ("250ms", "5s", "1h30m"); a bare number other
// than 0 is rejected. Sizes are bytes or binary units ("4096", "512KiB",
// "64MiB", "1GiB", also Kubernetes' "64Mi"); decimal units such as "MB"
// are rejected as ambiguous. See ParseSize and ParseDuration.
//
// # A complete file
//
//	version: 1
//	listeners:
//	  - name: egress                 # the app's HTTP_PROXY
//	    address: 127.0.0.1:8089
//	    mode: forward
//	  - name: ingress
//	    address: 0.0.0.0:8080
//	    mode: reverse
//	    read_header_timeout: 10s
//	    idle_timeout: 90s
//	    max_header_bytes: 1MiB
//	    max_request_body: 8MiB
//	    max_connections: 4096            # open at once; more are refused at accept
//	    max_connections_per_client: 200  # from one client IP; default 0 = no cap
//	admin:
//	  address: 127.0.0.1:9901
//	  allow_remote: false
//	cache:
//	  dir: /var/run/zerohop
//	  size: 256MiB
//	  region_size: 4MiB
//	  max_object_size: 1MiB
//	  heartbeat_interval: 250ms
//	  heuristic_max: 24h
//	  stale_if_error: 1m
//	  coalesce_timeout: 5s
//	store:
//	  path: /data/zerohop
//	  max_disk: 2GiB
//	invalidation:
//	  redis: {address: redis.infra:6379, stream: "zerohop:invalidations"}
//	clusters:
//	  - name: api
//	    endpoints:
//	      - url: http://api-v1.svc:8080
//	        weight: 9
//	      - url: http://api-v2.svc:8080
//	    connect_timeout: 2s
//	    response_timeout: 30s
//	    body_idle_timeout: 60s
//	    tls: {server_name: api.internal}
//	routes:
//	  - name: api-read
//	    match: {host: "*.example.com", path_prefix: /v1/, methods: [GET, HEAD]}
//	    cluster: api
//	    cache: {ttl_override: 30s, bypass: [Authorization]}
//	    timeout: 10s
//
// # Reloading
//
// Watch and Watcher follow the file through ConfigMap symlink swaps and
// editor renames, and deliver only valid, changed configs; a bad edit is
// reported and the running config stays in place.
package config
