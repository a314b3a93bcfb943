package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// writeConfig writes content to dir/zerohop.yaml and returns the path.
func writeConfig(t *testing.T, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, "zerohop.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lines joins YAML lines, so that line numbers in the tables are easy to count.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// validTail is a valid cluster and route, for rows that need them.
var validTail = lines(
	"clusters:",
	"  - name: api",
	"    endpoints: [{url: 'http://10.0.0.7:8080'}]",
	"routes:",
	"  - name: r",
	"    cluster: api",
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if len(c.Listeners) != 1 || c.Listeners[0].Address != "127.0.0.1:8089" || c.Listeners[0].Mode != ModeForward {
		t.Errorf("default listeners = %+v, want one forward listener on 127.0.0.1:8089", c.Listeners)
	}
	if c.Admin.Address != "127.0.0.1:9901" || c.Cache.Dir != "/var/run/zerohop" || c.Cache.Size != 64*MiB {
		t.Errorf("unexpected defaults: admin %q, cache %q %v", c.Admin.Address, c.Cache.Dir, c.Cache.Size)
	}
	if c.Invalidation.Log != "/var/run/zerohop/inval/inval.log" {
		t.Errorf("invalidation.log = %q", c.Invalidation.Log)
	}
	if a, b := Default(), Default(); a == b || &a.Listeners[0] == &b.Listeners[0] {
		t.Error("Default must return a fresh value each call")
	}
}

func TestDefaultsRoundTrip(t *testing.T) {
	for _, name := range []string{"empty", "comments only", "null", "marshalled defaults"} {
		t.Run(name, func(t *testing.T) {
			var data []byte
			switch name {
			case "comments only":
				data = []byte("# nothing here\n")
			case "null":
				data = []byte("~\n")
			case "marshalled defaults":
				var err error
				if data, err = yaml.Marshal(Default()); err != nil {
					t.Fatal(err)
				}
			}
			path := writeConfig(t, t.TempDir(), string(data))
			got, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v\n%s", err, data)
			}
			if !reflect.DeepEqual(got, Default()) {
				t.Errorf("Load(%s) =\n%+v\nwant Default()\n%+v", name, got, Default())
			}
		})
	}
}

// TestFullExampleRoundTrips parses the complete file in the package doc,
// so that the documentation cannot drift from the schema, then checks that
// marshalling and parsing it again changes nothing.
func TestFullExampleRoundTrips(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	in := false
	for _, l := range strings.Split(string(doc), "\n") {
		if l == "//	version: 1" {
			in = true
		}
		if in && !strings.HasPrefix(l, "//\t") {
			break
		}
		if in {
			b.WriteString(strings.TrimPrefix(l, "//\t") + "\n")
		}
	}
	if b.Len() == 0 {
		t.Fatal("no example YAML found in doc.go")
	}
	// The example's certificate files are where a pod would mount them;
	// here they are the test's.
	example := strings.NewReplacer("/etc/zerohop/ingress/tls.crt", srvPEM, "/etc/zerohop/ingress/tls.key", srvKey,
		"/etc/zerohop/ingress/ca.crt", caPEM, "/etc/zerohop/payments/ca.crt", caPEM,
		"/etc/zerohop/payments/tls.crt", cliPEM, "/etc/zerohop/payments/tls.key", cliKey).Replace(b.String())
	c, err := Parse("doc.go", []byte(example))
	if err != nil {
		t.Fatalf("doc example: %v\n%s", err, b.String())
	}
	if c.Routes[0].Cache == nil || !c.Routes[0].Cache.Enabled || c.Clusters[0].Endpoints[1].Weight != 1 {
		t.Errorf("element defaults not applied: %+v", c.Routes[0].Cache)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse("marshalled", out)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(c, c2) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", c, c2)
	}
}

func TestFileOverlaysDefaults(t *testing.T) {
	path := writeConfig(t, t.TempDir(), lines(
		"x-ep: &ep {weight: 3}",
		"listeners:",
		"  - name: in",
		"    mode: reverse",
		"cache:",
		"  dir: /srv/cache",
		"  size: 1GiB",
		"clusters:",
		"  - name: api",
		"    endpoints:",
		"      - {url: 'https://api.internal', <<: *ep}",
		"      - url: http://[::1]:8080",
		"        weight: 0",
		"routes:",
		"  - name: r",
		"    cluster: api",
		"    cache: {enabled: false}",
		"    match:",
		"      host: '*.Example.com'",
		"      headers: {X-Tenant: blue}",
	))
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Listeners = []Listener{{Name: "in", Address: "127.0.0.1:8089", Mode: ModeReverse,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second, MaxHeaderBytes: MiB, FastPath: true,
		MaxConnections: DefaultMaxConnections,
		Forward:        Forward{TunnelIdleTimeout: time.Hour},
		Transparent:    Transparent{SniffTimeout: DefaultSniffTimeout, Passthrough: true}}}
	want.Cache.Dir = "/srv/cache"
	want.Cache.Size = GiB
	want.Invalidation.Log = "/srv/cache/inval/inval.log" // derived from the new dir
	want.Clusters = []Cluster{{Name: "api", ConnectTimeout: 5 * time.Second, ResponseTimeout: 30 * time.Second, BodyIdleTimeout: DefaultBodyIdleTimeout,
		MaxIdleConns: 64, PanicThreshold: DefaultPanicThreshold, Endpoints: []Endpoint{{URL: "https://api.internal", Weight: 3}, {URL: "http://[::1]:8080", Weight: 0}}}}
	want.Routes = []Route{{Name: "r", Cluster: "api", Cache: &RouteCache{Enabled: false},
		Match: Match{Host: "*.Example.com", Headers: map[string]string{"X-Tenant": "blue"}}}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%+v\nwant\n%+v", c, want)
	}
}

func TestBadConfigs(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // "zerohop.yaml:LINE: FIELD: MESSAGE", or a part of it
	}{
		{"unknown route cluster", lines(
			"clusters:",
			"  - name: api",
			"    endpoints: [{url: 'http://10.0.0.7:8080'}]",
			"routes:",
			"  - name: r0",
			"    cluster: api",
			"  - name: r1",
			"    cluster: api2",
		), `zerohop.yaml:8: routes[1].cluster: unknown cluster "api2" (did you mean "api"?)`},
		{"no clusters at all", lines("routes:", "  - {name: r, cluster: x}"),
			`zerohop.yaml:2: routes[0].cluster: unknown cluster "x"; no clusters are defined`},
		{"missing cluster", lines("routes:", "  - name: r"),
			`zerohop.yaml:2: routes[0].cluster: required: name the cluster this route sends to`},
		{"unknown top-level field", lines("cache:", "  size: 1GiB", "routs: []"),
			`zerohop.yaml:3: routs: unknown field (did you mean "routes"?)`},
		{"unknown nested field lists valid ones", lines("admin:", "  bogus: 1"),
			`zerohop.yaml:2: admin.bogus: unknown field; valid fields are address, allow_remote, token`},
		{"retries is a mapping", lines("clusters:", "  - name: a", "    endpoints: [{url: 'http://a'}]", "    retries: 3"),
			`zerohop.yaml:4: clusters[0].retries: expected a mapping (key: value lines), got the number 3`},
		{"egress without default", lines("egress: {}"), `zerohop.yaml:1: egress.default: required`},
		{"duplicate key", lines("cache:", "  size: 1GiB", "  size: 2GiB"),
			`zerohop.yaml:3: cache.size: duplicate key (first set at line 2)`},
		{"yaml unclosed list", lines("cache:", "  size: [1", "admin: {}"), `zerohop.yaml:2: invalid YAML: did not find expected ',' or ']'`},
		{"yaml bad indentation", lines("cache:", "  size: 1GiB", "  dir: /x", " admin: {}"),
			`zerohop.yaml:4: invalid YAML: did not find expected key (check the indentation at and below this line)`},
		{"yaml tab", lines("cache:", "\tsize: 1"), `zerohop.yaml:2: invalid YAML: found character that cannot start any token`},
		{"yaml error on line 1", lines("a: b: c"), `zerohop.yaml:1: invalid YAML: mapping values are not allowed in this context`},
		{"two documents", lines("cache: {}", "---", "admin: {}"),
			`zerohop.yaml:3: found a second YAML document`},
		{"top level not a mapping", lines("- a"), `zerohop.yaml:1: the config must be a mapping of sections`},
		{"bad listener address", lines("listeners:", "  - name: a", "    address: localhost"),
			`zerohop.yaml:3: listeners[0].address: invalid address "localhost": want host:port`},
		{"bad port", lines("listeners:", "  - {name: a, address: '127.0.0.1:70000'}"),
			`zerohop.yaml:2: listeners[0].address: invalid address "127.0.0.1:70000": port must be a number from 0 to 65535`},
		{"unbracketed ipv6", lines("listeners:", "  - {name: a, address: '::1:80'}"),
			`put IPv6 addresses in brackets`},
		{"bad mode", lines("listeners:", "  - name: a", "    mode: revrse"),
			`zerohop.yaml:3: listeners[0].mode: invalid mode "revrse": must be "forward", "reverse" or "transparent"`},
		{"reverse without routes", lines("listeners:", "  - name: a", "    mode: reverse"),
			`zerohop.yaml:3: listeners[0].mode: reverse mode needs at least one route, but no routes are configured`},
		{"no listeners", lines("listeners: []"), `zerohop.yaml:1: listeners: at least one listener is required`},
		{"listener name required", lines("listeners:", "  - address: 127.0.0.1:1"),
			`zerohop.yaml:2: listeners[0].name: listener name is required`},
		{"listener name syntax", lines("listeners:", "  - name: my listener"),
			`zerohop.yaml:2: listeners[0].name: invalid name "my listener"`},
		{"duplicate listener name", lines("listeners:", "  - {name: a, address: '127.0.0.1:1'}", "  - {name: a, address: '127.0.0.1:2'}"),
			`zerohop.yaml:3: listeners[1].name: duplicate listener name "a" (first defined at line 2)`},
		{"duplicate listener address", lines("listeners:", "  - {name: a}", "  - {name: b}"),
			`zerohop.yaml:3: listeners[1].address: address "127.0.0.1:8089" is already used by another listener`},
		{"listener on admin address", lines("listeners:", "  - {name: a, address: '127.0.0.1:9901'}"),
			`zerohop.yaml:2: listeners[0].address: address "127.0.0.1:9901" is also the admin address`},
		{"admin not loopback", lines("admin:", "  address: 0.0.0.0:9901"),
			`zerohop.yaml:2: admin.address: "0.0.0.0:9901" is not a loopback address; admin endpoints would be reachable from outside the pod`},
		{"admin all interfaces", lines("admin: {address: ':9901'}"), `admin.address: ":9901" is not a loopback address`},
		{"admin short token", lines("admin:", "  token: hunter2"),
			`zerohop.yaml:2: admin.token: too short (7 characters)`},
		{"admin token newline", lines("admin:", `  token: "0123456789abcdef\n"`),
			`zerohop.yaml:2: admin.token: contains whitespace or control characters`},
		{"decimal size", lines("cache:", "  size: 64MB"),
			`zerohop.yaml:2: cache.size: ambiguous unit "MB" in "64MB": use a binary unit such as "MiB" (1024-based), or plain bytes`},
		{"negative size", lines("cache:", "  size: -1"), `zerohop.yaml:2: cache.size: invalid size "-1": must not be negative`},
		{"size wrong type", lines("cache:", "  size: [1]"), `zerohop.yaml:2: cache.size: expected a size such as "64MiB", got a list`},
		{"region too large", lines("cache:", "  size: 8MiB"),
			`zerohop.yaml:2: cache.size: region_size 4MiB is too large for size 8MiB: the cache needs at least 4 regions plus its index (region_size ≤ size/5 = 1677721)`},
		{"object does not fit", lines("cache:", "  max_object_size: 4MiB"),
			`zerohop.yaml:2: cache.max_object_size: the largest entry does not fit in a region: max_object_size 4MiB + max_key_size 8KiB + max_header_bytes 64KiB + 4KiB overhead > region_size 4MiB`},
		{"zero size", lines("cache:", "  max_key_size: 0"), `zerohop.yaml:2: cache.max_key_size: must be greater than 0`},
		{"duration without unit", lines("cache:", "  heartbeat_interval: 250"),
			`zerohop.yaml:2: cache.heartbeat_interval: invalid duration "250": add a unit, e.g. "250s" or "250ms"`},
		{"zero heartbeat", lines("cache:", "  heartbeat_interval: 0s"),
			`zerohop.yaml:2: cache.heartbeat_interval: must be greater than 0, got 0s`},
		{"negative duration", lines("cache:", "  default_ttl: -5s"), `zerohop.yaml:2: cache.default_ttl: invalid duration "-5s": must not be negative`},
		{"bool type", lines("cache:", "  allow_set_cookie: maybe"),
			`zerohop.yaml:2: cache.allow_set_cookie: expected true or false, got the string "maybe"`},
		{"int type", lines("store:", "  queue: lots"), `zerohop.yaml:2: store.queue: expected an integer, got the string "lots"`},
		{"store queue", lines("store:", "  queue: 0"), `zerohop.yaml:2: store.queue: must be greater than 0, got 0`},
		{"negative connection cap", lines("listeners:", "  - {name: a, max_connections: -1}"),
			`zerohop.yaml:2: listeners[0].max_connections: must not be negative (0 means no cap), got -1`},
		{"negative per-client cap", lines("listeners:", "  - {name: a, max_connections_per_client: -2}"),
			`zerohop.yaml:2: listeners[0].max_connections_per_client: must not be negative (0 means no cap), got -2`},
		{"section not a mapping", lines("cache: big"), `zerohop.yaml:1: cache: expected a mapping (key: value lines), got the string "big"`},
		{"redis without address", lines("invalidation:", "  redis: {stream: s}"),
			`zerohop.yaml:2: invalidation.redis.address: required when invalidation.redis is set`},
		{"redis bad address", lines("invalidation:", "  redis:", "    address: redis"),
			`zerohop.yaml:3: invalidation.redis.address: invalid address "redis"`},
		{"cluster without endpoints", lines("clusters:", "  - name: a"),
			`zerohop.yaml:2: clusters[0].endpoints: a cluster needs at least one endpoint`},
		{"endpoint not absolute", lines("clusters:", "  - name: a", "    endpoints:", "      - url: api:8080"),
			`zerohop.yaml:4: clusters[0].endpoints[0].url: invalid URL "api:8080": must be an absolute http:// or https:// URL`},
		{"endpoint ftp", lines("clusters:", "  - name: a", "    endpoints: [{url: 'ftp://x'}]"), `invalid URL "ftp://x"`},
		{"endpoint with path", lines("clusters:", "  - name: a", "    endpoints: [{url: 'http://x/v1'}]"),
			`zerohop.yaml:3: clusters[0].endpoints[0].url: URL "http://x/v1" must not have a path`},
		{"endpoint credentials not echoed", lines("clusters:", "  - name: a", "    endpoints: [{url: 'http://u:secret@x'}]"),
			`URL "http://u:xxxxx@x" must not contain credentials`},
		{"endpoint bad port", lines("clusters:", "  - name: a", "    endpoints: [{url: 'http://x:0'}]"), `has an invalid port "0"`},
		{"unknown cluster client", lines("clusters:", "  - name: a", "    endpoints: [{url: 'http://x'}]", "    client: http2"),
			`zerohop.yaml:4: clusters[0].client: invalid client "http2": must be "h1", "std" or "h2c"`},
		{"duplicate endpoint", lines("clusters:", "  - name: a", "    endpoints:", "      - url: http://x", "      - url: http://x"),
			`zerohop.yaml:5: clusters[0].endpoints[1].url: duplicate endpoint "http://x" (first defined at line 4)`},
		{"negative weight", lines("clusters:", "  - name: a", "    endpoints:", "      - {url: 'http://x', weight: -1}"),
			`zerohop.yaml:4: clusters[0].endpoints[0].weight: must be between 0 and 1000000, got -1`},
		{"all weights zero", lines("clusters:", "  - name: a", "    endpoints:", "      - {url: 'http://x', weight: 0}"),
			`zerohop.yaml:3: clusters[0].endpoints: every endpoint has weight 0`},
		{"duplicate cluster", lines("clusters:", "  - {name: a, endpoints: [{url: 'http://x'}]}", "  - {name: a, endpoints: [{url: 'http://x'}]}"),
			`zerohop.yaml:3: clusters[1].name: duplicate cluster name "a" (first defined at line 2)`},
		{"duplicate route", validTail + lines("  - name: r", "    cluster: api"),
			`zerohop.yaml:7: routes[1].name: duplicate route name "r" (first defined at line 5)`},
		{"methods not a list", validTail + lines("    match:", "      methods: GET"),
			`zerohop.yaml:8: routes[0].match.methods: expected a list, got the string "GET" (for a one-item list write [GET])`},
		{"lower-case method", validTail + lines("    match: {methods: [get]}"),
			`zerohop.yaml:7: routes[0].match.methods[0]: method "get" is not upper case; methods are case-sensitive (did you mean "GET"?)`},
		{"path prefix without slash", validTail + lines("    match:", "      path_prefix: v1"),
			`zerohop.yaml:8: routes[0].match.path_prefix: must start with "/", got "v1"`},
		{"prefix and exact", validTail + lines("    match:", "      path_prefix: /a", "      path_exact: /a/b"),
			`zerohop.yaml:9: routes[0].match.path_exact: set one of path_exact, path_prefix and path_regex, not several`},
		{"bad wildcard", validTail + lines("    match: {host: 'api.*.com'}"),
			`zerohop.yaml:7: routes[0].match.host: invalid host "api.*.com": a wildcard is only allowed as a leading "*."`},
		{"host with port", validTail + lines("    match: {host: 'api:80'}"), `invalid host "api:80": must not include a port`},
		{"header twice", validTail + lines("    match:", "      headers: {X-A: '1', x-a: '2'}"),
			`zerohop.yaml:8: routes[0].match.headers: header "x-a" is listed twice (header names ignore case)`},
		{"bad bypass header", validTail + lines("    cache: {bypass: ['Bad Header']}"),
			`zerohop.yaml:7: routes[0].cache.bypass: invalid header name "Bad Header"`},
		{"response header the proxy owns", validTail + lines("    response_headers: {Content-Length: '5'}"),
			`zerohop.yaml:7: routes[0].response_headers.Content-Length: "Content-Length" is set by the proxy or the framing, not by a route`},
		{"response header bad value", validTail + lines("    response_headers:", "      X-A: \"a\\u0001b\""),
			`routes[0].response_headers.X-A: invalid header value "a\x01b"`},
		{"response header bad name", validTail + lines("    response_headers: {'Bad Header': x}"),
			`routes[0].response_headers: invalid header name "Bad Header"`},
		{"limits enforced, not reserved", lines("limits:", "  - {name: l, rate: 0}"),
			`zerohop.yaml:2: limits[0].rate: must be greater than 0 (requests per period), got 0`},
		{"version", lines("version: 2"), `zerohop.yaml:1: version: unsupported version 2; this zerohop reads version 1`},
		{"merge of a scalar", lines("cache:", "  <<: 5"), `zerohop.yaml:2: cache: merge key (<<) needs a mapping or a list of mappings, got the number 5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), tt.yaml)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded (%+v); want error %q", c, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList", err)
			}
			// Every problem is reported once: no cascades from one mistake.
			if len(list) != 1 {
				t.Errorf("got %d errors, want 1:\n%v", len(list), err)
			}
		})
	}
}

func TestAllErrorsAreReported(t *testing.T) {
	path := writeConfig(t, t.TempDir(), lines(
		"cache:",
		"  size: 64MB",                  // 2
		"  heartbeat_interval: 5",       // 3
		"listeners:",                    // 4
		"  - name: a",                   // 5
		"    mode: sideways",            // 6
		"routes:",                       // 7
		"  - {name: r, cluster: nope}",  // 8
		"admin: {address: '0.0.0.0:1'}", // 9
	))
	_, err := Load(path)
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Load error %v is not an ErrorList", err)
	}
	var got []int
	for _, e := range list {
		got = append(got, e.Line)
	}
	if want := []int{2, 3, 6, 8, 9}; !reflect.DeepEqual(got, want) {
		t.Errorf("error lines = %v, want %v (sorted, all reported):\n%v", got, want, err)
	}
	if n := strings.Count(err.Error(), "\n"); n != len(list)-1 {
		t.Errorf("message has %d lines, want one per error:\n%v", n+1, err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "cache.size" || fe.Line != 2 || !strings.HasSuffix(fe.File, "zerohop.yaml") {
		t.Errorf("errors.As(*FieldError) = %+v", fe)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("Load(absent) = %v; want a config: error wrapping fs.ErrNotExist", err)
	}
}

func TestValidateWithoutFile(t *testing.T) {
	c := Default()
	c.Cache.Size = 0
	c.Listeners[0].Mode = "reverse"
	err := c.Validate()
	want := "config: listeners[0].mode: reverse mode needs at least one route, but no routes are configured\n" +
		"config: cache.size: must be greater than 0"
	if err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
}

func TestAliasBombIsBounded(t *testing.T) {
	// 2000 aliases to a 2000-endpoint list: 4 million nodes if expanded,
	// from a file of a few dozen kilobytes.
	var b strings.Builder
	b.WriteString("x-eps: &eps [")
	for i := range 2000 {
		fmt.Fprintf(&b, "{url: 'http://h%d'},", i)
	}
	b.WriteString("]\nx-c: &c {name: a, endpoints: *eps}\nclusters: [")
	b.WriteString(strings.Repeat("*c, ", 2000))
	b.WriteString("]\n")
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(b.String()))
	want := "bomb.yaml:1: document too large or too deeply aliased (more than 200000 nodes)"
	if err == nil || err.Error() != want {
		t.Errorf("Parse(bomb) = %.300v; want only %q", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse(bomb) took %v", d)
	}
}

func TestMergeKeys(t *testing.T) {
	c, err := Parse("m.yaml", []byte(lines(
		"x-base: &base {connect_timeout: 1s, response_timeout: 2s}",
		"x-more: &more {response_timeout: 9s, max_idle_conns: 3}",
		"clusters:",
		"  - <<: [*base, *more]",
		"    name: a",
		"    connect_timeout: 7s",
		"    endpoints: [{url: 'http://a'}]",
	)))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Clusters[0]
	// Explicit keys win; among merged mappings the first wins.
	if got.ConnectTimeout != 7*time.Second || got.ResponseTimeout != 2*time.Second || got.MaxIdleConns != 3 {
		t.Errorf("merged cluster = %+v", got)
	}
}

func TestClusterEffectiveClient(t *testing.T) {
	tests := []struct {
		name   string
		client ClusterClient
		urls   []string
		tls    bool
		want   ClusterClient
	}{
		{"plain http: h1", "", []string{"http://a:8080", "http://b"}, false, ClientH1},
		{"an https endpoint: std", "", []string{"http://a", "https://b"}, false, ClientStd},
		{"tls set: std", "", []string{"http://a"}, true, ClientStd},
		{"explicit std", ClientStd, []string{"http://a"}, false, ClientStd},
		{"explicit h1 over https", ClientH1, []string{"https://a"}, true, ClientH1},
	}
	for _, tt := range tests {
		c := Cluster{Client: tt.client}
		for _, u := range tt.urls {
			c.Endpoints = append(c.Endpoints, Endpoint{URL: u, Weight: 1})
		}
		if tt.tls {
			c.TLS = &UpstreamTLS{}
		}
		if got := c.EffectiveClient(); got != tt.want {
			t.Errorf("%s: EffectiveClient() = %q; want %q", tt.name, got, tt.want)
		}
	}
	c, err := Parse("c.yaml", []byte(lines(
		"clusters:",
		"  - {name: a, endpoints: [{url: 'http://a'}]}",
		"  - {name: b, endpoints: [{url: 'http://b'}], client: std}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Clusters[0].Client != "" || c.Clusters[0].EffectiveClient() != ClientH1 || c.Clusters[1].Client != ClientStd {
		t.Errorf("parsed clients %q, %q; want \"\" (h1) and std", c.Clusters[0].Client, c.Clusters[1].Client)
	}
}

func TestCloneIsDeep(t *testing.T) {
	c, err := Parse("c.yaml", []byte(validTail+lines(
		"    match: {methods: [GET], headers: {A: b}}",
		"    cache: {bypass: [Cookie]}",
		"invalidation: {redis: {address: 'r:6379'}}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	c.Clusters[0].TLS = &UpstreamTLS{ServerName: "s"}
	orig := c.Clone()
	cl := c.Clone()
	if !reflect.DeepEqual(cl, c) {
		t.Fatal("Clone differs from the original")
	}
	cl.Listeners[0].Name = "changed"
	cl.Clusters[0].Endpoints[0].Weight = 42
	cl.Clusters[0].TLS.ServerName = "changed"
	cl.Routes[0].Match.Methods[0] = "PUT"
	cl.Routes[0].Match.Headers["A"] = "changed"
	cl.Routes[0].Cache.Bypass[0] = "changed"
	cl.Invalidation.Redis.Address = "changed"
	if !reflect.DeepEqual(c, orig) {
		t.Errorf("changing the clone changed the original:\n%+v", c)
	}
	if (*Config)(nil).Clone() != nil {
		t.Error("nil.Clone() != nil")
	}
}

// everyField sets every field of the model to a non-zero value, somewhere.
// When a field is added to the model, add it here too.
var everyField = lines(
	"version: 1",
	"listeners:",
	"  - name: in",
	"    address: 0.0.0.0:8080",
	"    mode: reverse",
	"    read_header_timeout: 1s",
	"    idle_timeout: 2s",
	"    max_header_bytes: 32KiB",
	"    max_request_body: 1GiB",
	"    max_connections: 500",
	"    max_connections_per_client: 50",
	"    tls: {cert_file: testdata/tls/server.pem, key_file: testdata/tls/server-key.pem, client_ca_file: testdata/tls/ca.pem, min_version: '1.3'}",
	"    auth: [office]",
	"    rate_limits: [per-tenant]",
	"  - name: out",
	"    address: 127.0.0.1:8089",
	"    forward: {allow_loopback: true, allow_destinations: ['169.254.10.0/24', '[::1]:8080'], tunnel_idle_timeout: 10m}",
	"admin: {address: '0.0.0.0:9901', allow_remote: true, token: 0123456789abcdef0123}",
	"cache:",
	"  dir: /c",
	"  size: 1GiB",
	"  region_size: 8MiB",
	"  expected_entries: 100000",
	"  max_object_size: 2MiB",
	"  max_key_size: 4KiB",
	"  max_header_bytes: 32KiB",
	"  heartbeat_interval: 100ms",
	"  default_ttl: 1m",
	"  heuristic_max: 1h",
	"  allow_set_cookie: true",
	"  stale_if_error: 30s",
	"  coalesce_timeout: 1s",
	"store: {path: /s, max_disk: 10GiB, queue: 10, memory_only_on_error: true, ready_after_refill: 0.5}",
	"invalidation:",
	"  log: /l/inval.log",
	"  redis: {address: 'r:6379', stream: s, db: 2, username: u, password: p, dial_timeout: 1s}",
	"clusters:",
	"  - name: api",
	"    endpoints: [{url: 'https://a:8443', weight: 5}]",
	"    connect_timeout: 1s",
	"    response_timeout: 2s",
	"    body_idle_timeout: 4s",
	"    max_idle_conns: 3",
	"    client: std",
	"    tls: {insecure_skip_verify: true, server_name: a.internal, cert_file: testdata/tls/client.pem, key_file: testdata/tls/client-key.pem, min_version: '1.3'}",
	"    circuit_breakers: {max_connections: 10, max_pending_requests: 5, max_requests: 20, max_retries: 2, retry_budget: {budget_percent: 10, min_retry_concurrency: 1}}",
	"    retries: {attempts: 2, retry_on: [connect-failure, 503], per_try_timeout: 1s, backoff_base: 10ms, backoff_max: 1s, max_body: 1KiB}",
	"    lb_policy: maglev",
	"    hash_policy: {header: X-User}",
	"    panic_threshold: 30",
	"    health_check: {path: /healthz, interval: 5s, timeout: 1s, jitter: 1s, healthy_threshold: 1, unhealthy_threshold: 2, expected_statuses: [200, 204], host: health.internal}",
	"    outlier_detection: {consecutive_5xx: 3, consecutive_gateway_failure: 2, base_ejection_time: 10s, max_ejection_time: 1m, max_ejection_percent: 50}",
	"    credentials: {type: header, header: X-Api-Key, file: /secrets/key, check_interval: 5s, cache_partition: p}",
	"  - {name: b, endpoints: [{url: 'https://b:8443'}], tls: {ca_file: testdata/tls/ca.pem}}",
	"  - {name: by-cookie, endpoints: [{url: 'http://b'}], lb_policy: maglev, hash_policy: {cookie: sid}, dns_refresh: 30s, dns_resolver: '10.0.0.53:53'}",
	"  - {name: by-client, endpoints: [{url: 'http://c'}], lb_policy: maglev, hash_policy: {source_address: true}}",
	"  - {name: ring, endpoints: [{url: 'http://d'}], lb_policy: ring_hash, hash_policy: {header: X-User}, ring_hash: {points_per_endpoint: 512, maximum_ring_size: 65536}}",
	"auth:",
	"  - name: keys",
	"    api_key: {file: /k, header: X-Key, query: key, realm: r}",
	"  - name: keys2",
	"    api_key: {file: /k, strip_credential: true}",
	"  - name: users",
	"    jwt:",
	"      algorithms: [RS256, HS256]",
	"      jwks_url: https://idp.example.com/jwks.json",
	"      hmac_secret_file: /s",
	"      refresh_interval: 1m",
	"      min_refresh_interval: 5s",
	"      issuer: https://idp.example.com/",
	"      audiences: [api]",
	"      clock_skew: 10s",
	"      require_expiry: true",
	"      consumer_claim: client_id",
	"      require_claims: {scope: read}",
	"      strip_credential: true",
	"      realm: api",
	"      cache_size: 100",
	"  - name: office",
	"    ip: {allow: [10.0.0.0/8, '::1'], deny: [10.9.0.0/16]}",
	"  - name: users2",
	"    jwt: {jwks_file: /j.json}",
	"routes:",
	"  - name: a",
	"    match: {host: a.example.com, path_prefix: /a/, methods: [GET], headers: {X-A: b}}",
	"    cluster: api",
	"    cache: {enabled: true, ttl_override: 5s, bypass: [Authorization]}",
	"    timeout: 3s",
	"    response_headers: {X-Served-By: zerohop}",
	"    auth: [keys, users]",
	"    max_concurrent_requests: 100",
	"    max_concurrent_requests_per_client: 10",
	"    max_request_body: 1MiB",
	"    rate_limits: [per-tenant]",
	"  - name: b",
	"    match: {path_exact: /b}",
	"    cluster: api",
	"  - name: c",
	"    weighted_clusters: [{cluster: api, weight: 9}]",
	"    split_sticky: {header: X-User}",
	"    mirror: {cluster: api, percent: 5, max_concurrent: 4, timeout: 1s}",
	"    retries: {attempts: 3, retry_on: [5xx], per_try_timeout: 1s, backoff_base: 10ms, backoff_max: 1s, max_body: 1KiB}",
	"  - name: d",
	"    weighted_clusters: [{cluster: api, weight: 1}]",
	"    split_sticky: {cookie: u}",
	"  - name: rc",
	"    match:",
	"      path_regex: '/c/[0-9]+'",
	"      header_rules: [{name: X-P, present: true, invert: true}, {name: X-E, exact: e}, {name: X-F, prefix: f}, {name: X-R, regex: 'r.*'}]",
	"      query: [{name: q, regex: '[0-9]+'}, {name: d, present: true, invert: true}, {name: e, exact: '1'}, {name: f, prefix: x}]",
	"    cluster: api",
	"    rewrite: {path_regex: '^/c/(.*)$', path_substitution: '/d/$1', host: d.internal}",
	"    cache: {key: {query: {keep: [id], sort: true}}}",
	"    request_header_ops: {add: {X-Add: a}, set: {X-Set: s}, remove: [X-Rm]}",
	"    response_header_ops: {add: {X-Add: a}, set: {X-Set: s}, remove: [X-Rm]}",
	"  - name: rd",
	"    match: {path_prefix: /d/}",
	"    cluster: api",
	"    rewrite: {path_prefix: /e/, keep_host: true}",
	"    cache: {default_ttl: 1m, key: {headers: [X-Tenant], query: {drop: [utm_source]}}}",
	"  - name: re",
	"    match: {path_prefix: /e/}",
	"    redirect: {status: 308, scheme: https, host: e.example.com, path_prefix: /f/, strip_query: true}",
	"  - name: rf",
	"    redirect: {path: /g}",
	"  - name: rg",
	"    direct_response: {status: 503, body: down, content_type: text/html}",
	"egress:",
	"  default: deny",
	"  audit_log: /var/log/egress.jsonl",
	"  rules: [{name: r, action: allow, hosts: [a.example], cidrs: [10.0.0.0/8], ports: [443], schemes: [https], methods: [CONNECT]}]",
	"limits:",
	"  - {name: per-tenant, rate: 100, period: 1m, burst: 10, key: header, header: X-Tenant, shadow: true, max_keys: 1000}",
	"  - name: g",
	"    rate: 5",
	"    global: {redis: {address: 'r:6379', cluster: true, username: u, password: p, pool_size: 4}, timeout: 20ms, on_error: closed}",
	"  - {name: h, rate: 5, global: {redis: {address: 'r:6379', db: 1}}}",
	"tracing:",
	"  slow_threshold: 2s",
	"  sampling_ratio: 0.5",
	"  resource_attributes: {deployment.environment: prod}",
	"  otlp: {endpoint: 'http://otel:4317', protocol: grpc, headers: {X-Key: k}, timeout: 5s}",
)

// TestEveryFieldDecodes parses everyField and checks, by reflection, that
// each leaf field of the model was set somewhere: it fails when a field is
// added without a YAML tag the decoder handles, or without a line above.
func TestEveryFieldDecodes(t *testing.T) {
	c, err := Parse("every.yaml", []byte(everyField))
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(path, v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.String {
				set[path] = set[path] || v.Len() > 0
				return
			}
			for i := range v.Len() {
				walk(path, v.Index(i))
			}
		default:
			set[path] = set[path] || !v.IsZero()
		}
	}
	walk("Config", reflect.ValueOf(c))
	var all func(path string, t reflect.Type)
	all = func(path string, typ reflect.Type) {
		switch typ.Kind() {
		case reflect.Pointer:
			all(path, typ.Elem())
		case reflect.Struct:
			for i := range typ.NumField() {
				all(path+"."+typ.Field(i).Name, typ.Field(i).Type)
			}
		case reflect.Slice:
			if typ.Elem().Kind() != reflect.String {
				all(path, typ.Elem())
				return
			}
			fallthrough
		default:
			if !set[path] {
				t.Errorf("%s is never set by everyField", path)
			}
		}
	}
	all("Config", reflect.TypeFor[Config]())
}

func TestListenerFastPath(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want bool
	}{
		{"listeners: [{name: a, address: 127.0.0.1:1}]\n", true},
		{"listeners: [{name: a, address: 127.0.0.1:1, fast_path: false}]\n", false},
		{"listeners: [{name: a, address: 127.0.0.1:1, fast_path: true}]\n", true},
	} {
		c, err := Parse("t.yaml", []byte(tt.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if got := c.Listeners[0].FastPath; got != tt.want {
			t.Errorf("%q: FastPath = %v; want %v", tt.yaml, got, tt.want)
		}
	}
}
