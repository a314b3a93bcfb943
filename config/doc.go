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
// for features not built yet
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
//	  - name: egress                 # the app's HTTP_PROXY and http_proxy
//	    address: 127.0.0.1:8089
//	    mode: forward
//	    forward:
//	      allow_loopback: false      # true: origins on the pod's loopback
//	      allow_destinations: ["127.0.0.1:8500"]  # one loopback port (a local agent)
//	      tunnel_idle_timeout: 1h
//	  - name: ingress
//	    address: 0.0.0.0:8080
//	    mode: reverse
//	    read_header_timeout: 10s
//	    idle_timeout: 90s
//	    max_header_bytes: 1MiB
//	    max_request_body: 8MiB
//	    max_connections: 4096            # open at once; more are refused at accept
//	    max_connections_per_client: 200  # from one client IP; default 0 = no cap
//	    tls:                             # HTTPS (h2 and HTTP/1.1); default: plain HTTP
//	      cert_file: /etc/zerohop/ingress/tls.crt
//	      key_file: /etc/zerohop/ingress/tls.key
//	      client_ca_file: /etc/zerohop/ingress/ca.crt  # require client certificates
//	      min_version: "1.2"
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
//	  targeted_fields: [Zerohop-Cache-Control, CDN-Cache-Control]
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
//	    lb_policy: least_request     # random (default), round_robin, least_request, maglev
//	    panic_threshold: 50          # % available below which all endpoints are used
//	    health_check: {path: /healthz, interval: 10s, timeout: 2s, healthy_threshold: 2, unhealthy_threshold: 3}
//	    outlier_detection: {consecutive_5xx: 5, base_ejection_time: 30s, max_ejection_percent: 10}
//	  - name: payments
//	    endpoints: [{url: https://payments.svc:8443}]
//	    tls:                         # the client is std: HTTP/2 where offered
//	      ca_file: /etc/zerohop/payments/ca.crt
//	      server_name: payments.internal
//	      cert_file: /etc/zerohop/payments/tls.crt   # mutual TLS
//	      key_file: /etc/zerohop/payments/tls.key
//	      min_version: "1.3"
//	  - name: grpc
//	    client: h2c                  # HTTP/2 without TLS, prior knowledge
//	    endpoints: [{url: http://grpc.svc:50051}]
//	  - name: sessions
//	    endpoints: [{url: http://sessions.svc:8080}]
//	    dns_refresh: 5s              # each address of the name is an endpoint
//	    lb_policy: maglev
//	    hash_policy: {cookie: sid}   # or header: X-User, or source_address: true
//	routes:
//	  - name: api-read
//	    match: {host: "*.example.com", path_prefix: /v1/, methods: [GET, HEAD]}
//	    cluster: api
//	    cache: {ttl_override: 30s, bypass: [Authorization]}
//	    timeout: 10s
//	    response_headers: {X-Served-By: zerohop}
//	  - name: items
//	    match:
//	      path_regex: "/v[0-9]+/items/[0-9]+"
//	      header_rules: [{name: X-Canary, present: true, invert: true}]
//	      query: [{name: id, regex: "[0-9]+"}]
//	    cluster: api
//	    rewrite: {path_regex: "^/v[0-9]+/(.*)$", path_substitution: "/$1", keep_host: true}
//	    request_header_ops: {set: {X-Env: prod}, remove: [X-Debug]}
//	    response_header_ops: {add: {X-Route: items}}
//	    cache: {default_ttl: 30s, key: {headers: [X-Tenant], query: {drop: [utm_source], sort: true}}}
//	  - name: health
//	    match: {path_exact: /healthz}
//	    direct_response: {status: 200, body: "ok"}
//	  - name: old-api
//	    match: {path_prefix: /v1/}
//	    redirect: {status: 308, path_prefix: /v2/}
//
// Routes are tried in file order; the first whose every condition holds
// takes the request (docs/routes.md has the matching rules, rewrites,
// direct responses, redirects and cache keys).
//
// # Forward proxy destinations
//
// A forward listener fetches whatever URL its client names and tunnels
// CONNECT to whatever host:port it names, so by default it refuses (403,
// with a Proxy-Status field "zerohop; error=destination_ip_prohibited"
// and a count in zerohop_egress_refused_total) the destinations that are
// the pod itself or its cloud's control plane rather than the network:
// the sidecar's own listeners and admin address, loopback (127.0.0.0/8,
// ::1, 0.0.0.0 and names such as localhost that resolve to them),
// link-local addresses (169.254.0.0/16, fe80::/10) and the cloud metadata
// services (169.254.169.254, fd00:ec2::254, 100.100.100.200,
// metadata.google.internal). Names are resolved first and the address
// checked is the one dialled, so DNS cannot steer a request past the
// check. listeners[].forward.allow_loopback and
// listeners[].forward.allow_destinations open these up where an app
// needs it; routes and their clusters, chosen by the operator, are never
// checked. A CONNECT tunnel closes after
// listeners[].forward.tunnel_idle_timeout (default 1h) without traffic.
// A forward listener on a non-loopback address is valid but draws a
// warning from Warnings (and zerohop validate): it is an open proxy to
// whoever reaches it.
//
// # TLS
//
// Certificate, key and CA files (clusters[].tls, listeners[].tls) are PEM,
// and read at load: a missing file, a file that does not parse or a key
// that does not match its certificate is an error on that field's line.
// While zerohop runs, they are reloaded when they change on disk (a
// Kubernetes Secret update, a file renamed over the old one), without a
// restart: new handshakes use the new files, open connections keep
// theirs, and files that do not load are refused, logged and counted in
// zerohop_tls_reloads_total{result="error"}, the previous ones staying in
// use. A TLS listener does not run the HTTP/1.1 fast path. docs/tls.md
// has the details.
//
// # Egress policy and outbound credentials
//
// The top-level egress section (Egress) adds allow and deny rules on the
// destinations of forward listeners (host, address range, port, scheme,
// method; first match wins; a default action), after the built-in
// refusals above, with an audit line per decision. A cluster's
// credentials section (Credentials) has the sidecar add an API key,
// bearer token or basic credentials from a mounted secret file to the
// requests sent to the cluster. docs/egress.md describes both.
//
//	egress:
//	  default: deny
//	  audit_log: /var/log/zerohop/egress.jsonl
//	  rules:
//	    - {name: no-internal, action: deny, cidrs: [10.0.0.0/8, "fd00::/8"]}
//	    - {name: apis, action: allow, hosts: ["*.example.com"], ports: [443], methods: [CONNECT]}
//	clusters:
//	  - name: payments
//	    endpoints: [{url: "http://payments-gw.internal:8080"}]
//	    credentials: {type: bearer, file: /var/run/secrets/payments/token}
//
// # Reloading
//
// Watch and Watcher follow the file through ConfigMap symlink swaps and
// editor renames, and deliver only valid, changed configs; a bad edit is
// reported and the running config stays in place.
package config
