package config

import (
	"reflect"
	"time"
)

// CurrentVersion is the only config schema version this build reads.
const CurrentVersion = 1

// Config is the whole zerohop configuration. The zero value is not useful;
// start from Default or Load. Every field notes its default; "derived"
// defaults are filled in by Parse from other fields.
type Config struct {
	// Version of the schema. Default 1, the only supported value. It lets a
	// later release change the meaning of a field without guessing.
	Version int `yaml:"version"`

	// Listeners accept traffic from the app (forward mode) or towards it
	// (reverse mode). Default: one forward-proxy listener "forward" on
	// 127.0.0.1:8089. A list in the file replaces the default list.
	Listeners []Listener `yaml:"listeners"`

	// Admin is the operator endpoint (stats, purge, config dump).
	Admin Admin `yaml:"admin"`

	// Cache is the shared memory-mapped RFC 9111 cache.
	Cache Cache `yaml:"cache"`

	// Store is the optional on-disk persistence behind the cache.
	Store Store `yaml:"store"`

	// Invalidation says where purge events are recorded and received.
	Invalidation Invalidation `yaml:"invalidation"`

	// Clusters are named groups of upstream endpoints. Default: none.
	Clusters []Cluster `yaml:"clusters"`

	// Routes map requests to clusters; the first match wins. Default: none.
	Routes []Route `yaml:"routes"`

	// Auth are the named checks of callers (API keys, JWTs, IP lists)
	// that listeners[].auth and routes[].auth require (config/auth.go,
	// docs/auth.md). Default: none.
	Auth []Authenticator `yaml:"auth"`

	// Egress is the egress policy of forward and transparent listeners
	// (egress.go, docs/egress.md, docs/transparent.md).
	// Default nil: none.
	Egress *Egress `yaml:"egress"`

	// Limits are named rate limits that routes and listeners apply
	// (their rate_limits lists); see Limit. Default: none.
	Limits []Limit `yaml:"limits"`

	// Tracing is request timelines (always kept) and OpenTelemetry spans
	// (when tracing.otlp is set). See tracing.go.
	Tracing Tracing `yaml:"tracing"`
}

// ListenerMode says how a listener treats requests.
type ListenerMode string

// Listener modes.
const (
	// ModeForward: the app sends absolute-form requests (HTTP_PROXY) and
	// zerohop fetches them, routing by host when a route matches.
	ModeForward ListenerMode = "forward"
	// ModeReverse: requests are matched against routes and sent to the
	// route's cluster; a request matching no route is answered 404.
	ModeReverse ListenerMode = "reverse"
	// ModeTransparent: connections redirected to the listener by
	// iptables (zerohop iptables) are forwarded to the destination the
	// app dialled (SO_ORIGINAL_DST). An HTTP/1.x request is a forward
	// request to that destination, its Host field kept, through the same
	// pipeline (routes matching its host, filters, cache, egress checks);
	// anything else (TLS, other protocols) is passed through as TCP after
	// the same destination checks. Linux only. See docs/transparent.md.
	ModeTransparent ListenerMode = "transparent"
)

// Listener is one HTTP listening socket.
type Listener struct {
	// Name identifies the listener in logs and metrics. Required, unique.
	Name string `yaml:"name"`
	// Address is host:port. Default "127.0.0.1:8089". Port 0 picks a free
	// port (for tests).
	Address string `yaml:"address"`
	// Mode is "forward" or "reverse". Default "forward".
	Mode ListenerMode `yaml:"mode"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s; 0 = none.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 90s; 0 = none.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes caps request header size. Default 1MiB; must be > 0.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// MaxRequestBody caps request bodies. Default 0 = unlimited (bodies are
	// streamed, not buffered).
	MaxRequestBody Size `yaml:"max_request_body"`
	// FastPath serves bodiless HTTP/1.1 GET and HEAD requests on the
	// connection's goroutine, under net/http (docs/fast-path.md). Default
	// true, and false on a listener with tls, which the fast path does not
	// serve (setting it true there is an error); false leaves every
	// request to net/http's server.
	FastPath bool `yaml:"fast_path"`
	// MaxConnections caps the connections the listener holds open at once,
	// whatever they carry (HTTP/1.1, h2c, CONNECT tunnels). One more is
	// closed as soon as it is accepted, without a response, and counted in
	// zerohop_connections_refused_total{reason="listener_limit"}. Default
	// 4096: an app's connection pool to its sidecar holds tens to hundreds,
	// while a kept-alive connection that has served requests costs about
	// 45 KiB on the fast path (20 KiB on net/http), some 180 MiB at the
	// cap; raise it with the memory limit. 0 = no cap.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerClient caps the connections open at once from one
	// client IP address (reason "client_limit"). Default 0 = no cap beyond
	// MaxConnections: on loopback every connection comes from the app's one
	// address, so a lower cap would only be a second listener cap. Set it
	// on a listener that many clients reach.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
	// Forward limits where the clients of a forward-mode listener may send
	// requests (absolute-form URLs without a matching route) and CONNECT
	// tunnels, and where a transparent listener forwards intercepted
	// connections. Only for modes forward and transparent: a reverse
	// listener sends requests to the operator's clusters, never to a
	// destination the client chose.
	Forward Forward `yaml:"forward"`
	// TLS, if set, makes the listener serve HTTPS (TLS termination for
	// ingress), optionally requiring client certificates. Default nil =
	// plain HTTP (and h2c). See ListenerTLS.
	TLS *ListenerTLS `yaml:"tls,omitempty"`
	// Transparent configures a listener with mode transparent.
	Transparent Transparent `yaml:"transparent"`
	// Auth names the authenticators (top-level auth) every request of the
	// listener must pass, in order, before its route's, also requests
	// without a route. Default empty.
	Auth []string `yaml:"auth"`
	// RateLimits names limits (top-level limits) applied to every request
	// the listener accepts, routed or not, before the route's own, in
	// order. Default empty.
	RateLimits []string `yaml:"rate_limits"`
}

// Forward is what a forward-mode listener lets its clients reach. By
// default it refuses, with a 403, every destination that is the pod
// itself or its cloud's control plane rather than the network: the
// sidecar's own listeners and admin address, loopback (127.0.0.0/8, ::1,
// 0.0.0.0, and names such as localhost that resolve to them), link-local
// addresses (169.254.0.0/16, fe80::/10) and the cloud metadata services
// (169.254.169.254, fd00:ec2::254, 100.100.100.200, and
// metadata.google.internal). The check is made on the address actually
// dialled, after name resolution, so a name that resolves to a refused
// address is refused too. The top-level egress policy (Config.Egress)
// says which other destinations may be reached.
// Like every listener setting, a change takes effect at the next start.
type Forward struct {
	// AllowLoopback lets clients reach loopback destinations: origins in
	// other containers of the pod, or on a developer's machine. Default
	// false. The sidecar's own listeners and admin address stay refused.
	AllowLoopback bool `yaml:"allow_loopback"`
	// AllowDestinations are addresses the default refusal does not apply
	// to: an IP address or CIDR prefix ("169.254.10.0/24", "::1"), which
	// allows every port, or an IP address and port ("127.0.0.1:8080",
	// "[fd00::1]:80"). Only an entry with the exact address and port
	// opens one of the sidecar's own listeners or its admin endpoint.
	// Default empty.
	AllowDestinations []string `yaml:"allow_destinations"`
	// TunnelIdleTimeout closes a CONNECT tunnel in which no byte has moved
	// either way for this long. Default 1h (Envoy's tcp_proxy default):
	// long enough for idle TLS connections an app keeps in its pool and
	// for quiet long-polls, short enough that tunnels whose peer vanished
	// do not pile up. 0 = none.
	TunnelIdleTimeout time.Duration `yaml:"tunnel_idle_timeout"`
}

// Transparent is how a transparent listener treats what it intercepts.
type Transparent struct {
	// SniffTimeout is how long the listener waits for a connection's
	// first bytes to tell HTTP from TLS and other protocols. A protocol
	// in which the server speaks first (SMTP, MySQL) sends nothing: it
	// is passed through when the wait ends, so its connection set-up
	// takes this much longer. Default 200ms; must be > 0.
	SniffTimeout time.Duration `yaml:"sniff_timeout"`
	// Passthrough lets connections that are not HTTP/1.x (TLS, whose
	// server name is logged and checked against the destination rules
	// by address, and other TCP) through to their destination. Default
	// true; false closes them (counted).
	Passthrough bool `yaml:"passthrough"`
}

// DefaultSniffTimeout is Transparent.SniffTimeout's default.
const DefaultSniffTimeout = 200 * time.Millisecond

// Admin is the admin HTTP endpoint.
type Admin struct {
	// Address is host:port. Default "127.0.0.1:9901"; "" disables admin.
	// Must be a loopback address unless AllowRemote is set.
	Address string `yaml:"address"`
	// AllowRemote permits a non-loopback Address. Default false: admin
	// endpoints can purge the cache and must not be open to the pod network
	// by accident.
	AllowRemote bool `yaml:"allow_remote"`
	// Token, if set, is required as "Authorization: Bearer <token>".
	// Default "" (no token). At least 16 characters, no whitespace. Prefer
	// supplying it through the environment: a ConfigMap is not a Secret.
	Token string `yaml:"token"`
}

// Cache configures the shared memory-mapped cache file.
type Cache struct {
	// Dir holds the cache file and is shared with the app's container.
	// Default "/var/run/zerohop".
	Dir string `yaml:"dir"`
	// Size of the cache file. Default 64MiB.
	Size Size `yaml:"size"`
	// RegionSize is the unit of allocation and eviction. Default 4MiB;
	// at most Size/5 (four regions and the index).
	RegionSize Size `yaml:"region_size"`
	// ExpectedEntries sizes the index. Default 0 = derived by the cache
	// from Size.
	ExpectedEntries int `yaml:"expected_entries"`
	// MaxObjectSize is the largest body stored. Default 1MiB. Together with
	// MaxKeySize, MaxHeaderBytes and RegionOverhead it must fit in one region.
	MaxObjectSize Size `yaml:"max_object_size"`
	// MaxKeySize is the largest cache key stored. Default 8KiB.
	MaxKeySize Size `yaml:"max_key_size"`
	// MaxHeaderBytes is the largest stored response header block. Default 64KiB.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// HeartbeatInterval is how often the writer proves it is alive to
	// readers. Default 250ms; must be > 0.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// DefaultTTL is the freshness lifetime of responses whose origin gave
	// none: no max-age or s-maxage (in Cache-Control or the targeted field
	// in use) and no Expires. It replaces heuristic freshness for them.
	// Default 0 = only what RFC 9111 allows (explicit or heuristic
	// freshness). A route's cache.default_ttl takes precedence.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// TargetedFields are the targeted cache-control fields (RFC 9213)
	// this cache obeys, most specific first: the first with a valid,
	// non-empty value decides storability and freshness in place of
	// Cache-Control and Expires. Every listed field is removed from
	// responses before they reach the app or the cache. Default
	// [Zerohop-Cache-Control, CDN-Cache-Control]; [] turns targeting off.
	TargetedFields []string `yaml:"targeted_fields"`
	// HeuristicMax caps heuristic freshness (RFC 9111 §4.2.2). Default 24h.
	HeuristicMax time.Duration `yaml:"heuristic_max"`
	// AllowSetCookie stores responses carrying Set-Cookie. Default false:
	// the cache is shared, and cookies are usually per user.
	AllowSetCookie bool `yaml:"allow_set_cookie"`
	// StaleIfError serves a stale entry this long past expiry when the
	// upstream fails (RFC 5861), unless the response says otherwise.
	// Default 0 = off.
	StaleIfError time.Duration `yaml:"stale_if_error"`
	// CoalesceTimeout is how long concurrent misses for one key wait for
	// the single in-flight fetch before going upstream themselves.
	// Default 5s; 0 = no coalescing.
	CoalesceTimeout time.Duration `yaml:"coalesce_timeout"`
}

// RegionOverhead is the space reserved in every cache region for the
// cache's own bookkeeping. The cache package's per-entry layout must stay
// within it; it appears here because Validate checks that the largest
// possible entry fits in one region.
const RegionOverhead = 4 * KiB

// Store is optional on-disk persistence of cache entries.
type Store struct {
	// Path of the store directory. Default "" = persistence off.
	Path string `yaml:"path"`
	// MaxDisk caps the store's disk usage. Default 1GiB; 0 = no cap.
	MaxDisk Size `yaml:"max_disk"`
	// Queue is the number of pending writes buffered before writes are
	// dropped. Default 1024; must be > 0.
	Queue int `yaml:"queue"`
	// MemoryOnlyOnError keeps zerohop serving from memory when the store
	// cannot be opened or fails, instead of exiting. Default true: a
	// sidecar that dies takes the app's traffic with it.
	MemoryOnlyOnError bool `yaml:"memory_only_on_error"`
	// ReadyAfterRefill is the share (0 to 1) of a warm-start refill from
	// the store that must be done before /readyz reports ready. Default 0:
	// ready at once, the refill continuing while traffic is served.
	ReadyAfterRefill float64 `yaml:"ready_after_refill"`
}

// Invalidation configures the purge log and optional fan-out.
type Invalidation struct {
	// Log is the append-only invalidation log. Default derived:
	// "<cache.dir>/inval/inval.log": a subdirectory, so that the app, which
	// mounts the cache directory read-only, can mount it read-write to append.
	Log string `yaml:"log"`
	// Redis, if set, receives invalidations from a Redis stream so that
	// purges reach every replica. Default nil (off).
	Redis *RedisStream `yaml:"redis,omitempty"`
}

// RedisStream is a Redis stream to consume invalidations from.
type RedisStream struct {
	// Address is host:port of the Redis server. Required.
	Address string `yaml:"address"`
	// Stream is the stream key. Default "zerohop:invalidations".
	Stream string `yaml:"stream"`
	// DB is the Redis database number. Default 0.
	DB int `yaml:"db"`
	// Username for Redis ACL auth. Default "".
	Username string `yaml:"username"`
	// Password for Redis auth. Default "". Prefer the environment.
	Password string `yaml:"password"`
	// DialTimeout bounds connecting. Default 5s; 0 = none.
	DialTimeout time.Duration `yaml:"dial_timeout"`

	// Reserved: tls.
}

// Cluster is a named set of upstream endpoints.
type Cluster struct {
	// Name is referenced by routes. Required, unique.
	Name string `yaml:"name"`
	// Endpoints receive the cluster's traffic, in proportion to weight.
	// At least one is required.
	Endpoints []Endpoint `yaml:"endpoints"`
	// ConnectTimeout bounds dialing an endpoint. Default 5s; 0 = none.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ResponseTimeout bounds the wait for response headers. Default 30s;
	// 0 = none.
	ResponseTimeout time.Duration `yaml:"response_timeout"`
	// BodyIdleTimeout bounds each wait for response body bytes from an
	// endpoint: a body that stalls longer is abandoned, the app's
	// connection aborted (never a truncated body that looks complete) and
	// nothing stored. Default 60s, as nginx's proxy_read_timeout; 0 =
	// none (the route's timeout, if any, still bounds the exchange).
	BodyIdleTimeout time.Duration `yaml:"body_idle_timeout"`
	// MaxIdleConns is the idle keep-alive pool size per endpoint. Default 64.
	MaxIdleConns int `yaml:"max_idle_conns"`
	// TLS configures connections to https endpoints: CA file, SNI,
	// minimum version, client certificate (see UpstreamTLS). Default nil =
	// system roots, server name from the URL, TLS 1.2 or later, no client
	// certificate.
	TLS *UpstreamTLS `yaml:"tls,omitempty"`
	// Client is the HTTP client for the endpoints: "h1" (zerohop's own
	// HTTP/1.1 client, cheaper per request), "std" (Go's net/http, which
	// also negotiates HTTP/2 with https endpoints through ALPN) or "h2c"
	// (net/http speaking HTTP/2 without TLS, with prior knowledge, to
	// http:// endpoints that serve it: gRPC backends; every endpoint must
	// be http:// and tls unset). Default "" = h1 when every endpoint is
	// http:// and tls is not set, std otherwise (see EffectiveClient). Set
	// "std" to fall back if h1 misbehaves with an upstream; "h1" with
	// https endpoints speaks HTTP/1.1 over TLS.
	Client ClusterClient `yaml:"client"`
	// LBPolicy chooses the endpoint of each request: "random" (by
	// weight), "round_robin" (smooth weighted), "least_request" (two
	// random choices), "maglev" or "ring_hash" (consistent hashing on
	// hash_policy's key). Default "" = random. See config/balance.go.
	LBPolicy LBPolicy `yaml:"lb_policy"`
	// HashPolicy is the request key maglev and ring_hash hash. Required
	// with lb_policy maglev or ring_hash, rejected otherwise. Default nil.
	HashPolicy *HashPolicy `yaml:"hash_policy,omitempty"`
	// RingHash sizes ring_hash's ring; only with lb_policy ring_hash.
	// Default nil = 1024 points per endpoint, at most 1048576 in all.
	RingHash *RingHash `yaml:"ring_hash,omitempty"`
	// PanicThreshold is the percentage (0 to 100) of endpoints (weight >
	// 0) that must be healthy and not ejected for the others to be
	// skipped; below it requests go to all endpoints, as in Envoy.
	// Default 50; 0 never panics, though with no endpoint available all
	// are used still.
	PanicThreshold int `yaml:"panic_threshold"`
	// HealthCheck actively checks each endpoint over HTTP. Default nil =
	// none.
	HealthCheck *HealthCheck `yaml:"health_check,omitempty"`
	// OutlierDetection ejects endpoints whose requests fail in a row.
	// Default nil = none.
	OutlierDetection *OutlierDetection `yaml:"outlier_detection,omitempty"`
	// DNSRefresh, when > 0, resolves the endpoints named by host name at
	// start and again at this interval: each address becomes an endpoint
	// of its own (the name's weight each; Host header and TLS server name
	// still the name), balanced, checked and ejected on its own. When a
	// resolution fails the last addresses stay, and the failure is
	// logged and counted (zerohop_dns_failures_total). Default 0: a name
	// is one endpoint, resolved by each new connection.
	DNSRefresh time.Duration `yaml:"dns_refresh"`
	// DNSResolver is the host:port of the DNS server dns_refresh asks
	// (over UDP, TCP for long answers). Default "" = the system's
	// resolver. Only with dns_refresh.
	DNSResolver string `yaml:"dns_resolver"`
	// Credentials are added to the requests sent to the cluster
	// (credentials.go). Default nil: none.
	Credentials *Credentials `yaml:"credentials"`
	// CircuitBreakers are the cluster's limits (config/resilience.go).
	// Default: no limits, and the default retry budget.
	CircuitBreakers CircuitBreakers `yaml:"circuit_breakers"`
	// Retries is the retry policy of routes to the cluster that set none
	// of their own (config/resilience.go). Default nil = no retries.
	Retries *RetryPolicy `yaml:"retries,omitempty"`
}

// ClusterClient names the HTTP client a cluster's connections use.
type ClusterClient string

// Cluster clients.
const (
	// ClientH1 is zerohop's HTTP/1.1 client: the request is written and
	// the response read on the requesting goroutine.
	ClientH1 ClusterClient = "h1"
	// ClientStd is Go's net/http client: HTTP/1.1, or HTTP/2 when an
	// https endpoint offers it.
	ClientStd ClusterClient = "std"
	// ClientH2C is Go's net/http client speaking HTTP/2 over plain TCP
	// (prior knowledge, RFC 9113 §3.3).
	ClientH2C ClusterClient = "h2c"
)

// Endpoint is one upstream server.
type Endpoint struct {
	// URL is an absolute http or https URL with a host and no path, query
	// or credentials, e.g. "http://10.0.0.7:8080". Required.
	URL string `yaml:"url"`
	// Weight is the relative share of traffic. Default 1; 0 drains the
	// endpoint; at most MaxWeight.
	Weight int `yaml:"weight"`
}

// MaxWeight bounds Endpoint.Weight so that weight sums cannot overflow.
const MaxWeight = 1_000_000

// Route sends matching requests to a cluster.
type Route struct {
	// Name identifies the route in logs, metrics and limit keys. Required,
	// unique.
	Name string `yaml:"name"`
	// Match selects requests; an empty match matches everything.
	Match Match `yaml:"match"`
	// Cluster is the name of the cluster to send to. Required, and must
	// exist, unless WeightedClusters is set or the route answers by itself
	// (DirectResponse, Redirect).
	Cluster string `yaml:"cluster"`
	// WeightedClusters splits the route's traffic across clusters in
	// proportion to their weights (a canary: [{cluster: v1, weight: 90},
	// {cluster: v2, weight: 10}]), each request picking a side at random
	// or, with SplitSticky, by a hash. Excludes Cluster. Default empty.
	WeightedClusters []WeightedCluster `yaml:"weighted_clusters"`
	// SplitSticky picks the side of WeightedClusters by a request field
	// or cookie (config/traffic.go). Default nil = at random.
	SplitSticky *SplitSticky `yaml:"split_sticky,omitempty"`
	// Mirror copies some of the route's upstream requests to a shadow
	// cluster (config/traffic.go). Default nil = none.
	Mirror *Mirror `yaml:"mirror,omitempty"`
	// Retries replaces the cluster's retry policy for this route
	// (config/resilience.go). Default nil = the cluster's.
	Retries *RetryPolicy `yaml:"retries,omitempty"`
	// Cache overrides caching for this route. Default nil = cache per the
	// global cache section.
	Cache *RouteCache `yaml:"cache,omitempty"`
	// Timeout bounds the whole upstream exchange. Default 0 = the
	// cluster's response_timeout.
	Timeout time.Duration `yaml:"timeout"`
	// ResponseHeaders are fields set on every response of the route (hits,
	// misses and the proxy's own answers alike), replacing any field of
	// the same name. Names the proxy or the framing owns (Content-Length,
	// Transfer-Encoding, Connection, Age, Cache-Status, X-Request-Id and
	// other hop-by-hop fields) are rejected. Default empty.
	ResponseHeaders map[string]string `yaml:"response_headers"`
	// Auth names the authenticators (top-level auth) every request of the
	// route must pass, in order, after its listener's and before the
	// cache. Default empty.
	Auth []string `yaml:"auth"`
	// MaxConcurrentRequests caps the requests of the route in progress at
	// once, from all clients; one more is answered 503 at once (with
	// Proxy-Status details naming the limit) and counted in
	// zerohop_concurrency_refused_total{route,limit="route"}. Hits count
	// too: the cap protects the sidecar as well as the upstream. Default
	// 0 = no cap.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// MaxConcurrentRequestsPerClient caps the requests of the route in
	// progress at once from one client IP address (limit="client").
	// Default 0 = no cap.
	MaxConcurrentRequestsPerClient int `yaml:"max_concurrent_requests_per_client"`
	// MaxRequestBody caps the request bodies of the route, as the
	// listener's max_request_body does (413, enforced while the body
	// streams); the smaller of the two applies. Default 0 = the
	// listener's cap only.
	MaxRequestBody Size `yaml:"max_request_body"`
	// RateLimits names limits (top-level limits) applied to the route's
	// requests, hits and misses alike, after its listener's. Every limit
	// listed counts the request; when several refuse it, the one that
	// frees last answers. Default empty.
	RateLimits []string `yaml:"rate_limits"`
	// Rewrite changes the path and Host sent upstream. Default nil = none.
	Rewrite *Rewrite `yaml:"rewrite,omitempty"`
	// RequestHeaderOps add, set and remove fields of the request sent
	// upstream (misses only: they never reach the cache key). Default nil.
	RequestHeaderOps *HeaderOps `yaml:"request_header_ops,omitempty"`
	// ResponseHeaderOps add, set and remove fields of every response of the
	// route; response_headers is applied after them (it wins for a name in
	// both). The owned names of response_headers are rejected here too.
	// Default nil.
	ResponseHeaderOps *HeaderOps `yaml:"response_header_ops,omitempty"`
	// DirectResponse answers the route's requests with a fixed status and
	// body, without a cluster. Default nil. Excludes Cluster and Redirect.
	DirectResponse *DirectResponse `yaml:"direct_response,omitempty"`
	// Redirect answers the route's requests with a redirect, without a
	// cluster. Default nil. Excludes Cluster and DirectResponse.
	Redirect *Redirect `yaml:"redirect,omitempty"`
}

// Match is a conjunction: every condition that is set must hold.
type Match struct {
	// Host is an exact host name ("api.example.com") or a wildcard for
	// subdomains ("*.example.com", which does not match "example.com").
	// Compared case-insensitively, without port. Default "" = any host.
	Host string `yaml:"host"`
	// PathPrefix matches paths starting with it. Default "" = any path.
	PathPrefix string `yaml:"path_prefix"`
	// PathExact matches one path exactly. Default "".
	PathExact string `yaml:"path_exact"`
	// PathRegex matches paths that a regular expression (RE2 syntax, as
	// Go's regexp) matches whole. Default "". Only one of PathExact,
	// PathPrefix and PathRegex may be set. Paths are compared as received
	// (percent-decoded), case-sensitively.
	PathRegex string `yaml:"path_regex"`
	// Methods lists accepted methods (case-sensitive, e.g. GET). Default
	// empty = any method.
	Methods []string `yaml:"methods"`
	// Headers maps header names to exact required values. Default empty.
	Headers map[string]string `yaml:"headers"`
	// HeaderRules are further conditions on header fields: present, exact,
	// prefix or regex, each optionally inverted. Default empty.
	HeaderRules []FieldMatch `yaml:"header_rules"`
	// Query are conditions on query parameters: present, exact, prefix or
	// regex, each optionally inverted. Default empty.
	Query []FieldMatch `yaml:"query"`
}

// RouteCache is per-route cache policy.
type RouteCache struct {
	// Enabled turns caching on for the route. Default true.
	Enabled bool `yaml:"enabled"`
	// TTLOverride replaces the freshness lifetime computed from response
	// headers. Responses RFC 9111 forbids storing are still not stored.
	// Default 0 = no override.
	TTLOverride time.Duration `yaml:"ttl_override"`
	// Bypass lists request header names; a request carrying any of them
	// skips the cache entirely (no lookup, no store). Default empty.
	Bypass []string `yaml:"bypass"`
	// DefaultTTL is the freshness lifetime of a response of the route
	// whose origin gave none (no max-age or s-maxage, in Cache-Control or
	// the targeted field in use, and no Expires), in place of
	// cache.default_ttl and of heuristic freshness. Default 0 =
	// cache.default_ttl.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// Key adds request header fields to the route's cache key and
	// normalises its query. Default nil = the request as sent.
	Key *CacheKey `yaml:"key,omitempty"`
}

// reservedKeys are keys a future version will accept. Rejecting them with
// a clear message beats both "unknown field" and silently ignoring them.
var reservedKeys = map[reflect.Type][]string{
	reflect.TypeFor[RedisStream](): {"tls"},
}
