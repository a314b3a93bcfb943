package config

import (
	"errors"
	"strings"
	"testing"
)

// routeHead is a file up to a route's name: the route's keys follow.
var routeHead = lines(
	"clusters:",
	"  - name: api",
	"    endpoints: [{url: 'http://10.0.0.7:8080'}]",
	"routes:",
	"  - name: r",
)

func TestBadRouteConfigs(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // "zerohop.yaml:LINE: FIELD: MESSAGE", or a part of it
	}{
		{"bad path regex", routeHead + lines("    cluster: api", "    match: {path_regex: '/a/(['}"),
			`zerohop.yaml:7: routes[0].match.path_regex: invalid regular expression: error parsing regexp: missing closing ]`},
		{"regex and prefix", routeHead + lines("    cluster: api", "    match:", "      path_prefix: /a", "      path_regex: /a.*"),
			`zerohop.yaml:9: routes[0].match.path_regex: set one of path_exact, path_prefix and path_regex, not several`},
		{"exact and regex", routeHead + lines("    cluster: api", "    match:", "      path_exact: /a", "      path_regex: /a.*"),
			`zerohop.yaml:9: routes[0].match.path_regex: set one of`},
		{"header rule bad regex", routeHead + lines("    cluster: api", "    match:", "      header_rules: [{name: X-A, regex: 'a(b'}]"),
			`zerohop.yaml:8: routes[0].match.header_rules[0].regex: invalid regular expression`},
		{"header rule two kinds", routeHead + lines("    cluster: api", "    match:", "      header_rules: [{name: X-A, exact: a, prefix: b}]"),
			`zerohop.yaml:8: routes[0].match.header_rules[0]: set exactly one of present, exact, prefix and regex`},
		{"header rule no kind", routeHead + lines("    cluster: api", "    match:", "      header_rules: [{name: X-A, invert: true}]"),
			`routes[0].match.header_rules[0]: set exactly one of present, exact, prefix and regex`},
		{"header rule bad name", routeHead + lines("    cluster: api", "    match:", "      header_rules: [{name: 'X A', present: true}]"),
			`routes[0].match.header_rules[0].name: invalid header name "X A"`},
		{"query rule without name", routeHead + lines("    cluster: api", "    match:", "      query: [{exact: '1'}]"),
			`routes[0].match.query[0].name: required: name the query parameter to test`},
		{"query bad regex", routeHead + lines("    cluster: api", "    match:", "      query: [{name: v, regex: '*'}]"),
			`routes[0].match.query[0].regex: invalid regular expression`},
		{"no action", lines("routes:", "  - name: r"),
			`zerohop.yaml:2: routes[0].cluster: required: name the cluster this route sends to (or set weighted_clusters, direct_response or redirect)`},
		{"cluster and redirect", routeHead + lines("    cluster: api", "    redirect: {path: /b}"),
			`zerohop.yaml:7: routes[0].redirect: set one of cluster (or weighted_clusters), direct_response and redirect`},
		{"direct and redirect", routeHead + lines("    direct_response: {status: 200}", "    redirect: {path: /b}"),
			`routes[0].redirect: set one of cluster (or weighted_clusters), direct_response and redirect`},
		{"redirect without target", routeHead + lines("    redirect: {status: 301}"),
			`zerohop.yaml:6: routes[0].redirect: a redirect needs a target: set scheme, host, path, path_prefix or strip_query`},
		{"redirect bad status", routeHead + lines("    redirect: {status: 300, path: /x}"),
			`routes[0].redirect.status: must be 301, 302, 303, 307 or 308, got 300`},
		{"redirect bad scheme", routeHead + lines("    redirect: {scheme: ftp}"), `routes[0].redirect.scheme: must be "http" or "https", got "ftp"`},
		{"redirect path and prefix", routeHead + lines("    match: {path_prefix: /a/}", "    redirect: {path: /x, path_prefix: /y/}"),
			`routes[0].redirect.path_prefix: set path or path_prefix, not both`},
		{"redirect prefix without prefix match", routeHead + lines("    redirect: {path_prefix: /y/}"),
			`routes[0].redirect.path_prefix: needs match.path_prefix or match.path_exact`},
		{"redirect relative path", routeHead + lines("    redirect: {path: x}"), `routes[0].redirect.path: must start with "/", got "x"`},
		{"redirect host with path", routeHead + lines("    redirect: {host: 'a.com/x'}"), `routes[0].redirect.host: invalid host "a.com/x"`},
		{"direct bad status", routeHead + lines("    direct_response: {status: 99}"),
			`routes[0].direct_response.status: must be between 200 and 599, got 99`},
		{"direct with timeout", routeHead + lines("    direct_response: {status: 204}", "    timeout: 1s"),
			`routes[0].timeout: a route that answers by itself has no upstream exchange to bound`},
		{"direct with cache", routeHead + lines("    direct_response: {status: 204}", "    cache: {enabled: false}"),
			`zerohop.yaml:7: routes[0].cache: a route that answers by itself does not use the cache`},
		{"redirect with request ops", routeHead + lines("    redirect: {path: /x}", "    request_header_ops: {set: {X-A: b}}"),
			`zerohop.yaml:7: routes[0].request_header_ops: a route that answers by itself sends no request upstream`},
		{"rewrite bad regex", routeHead + lines("    cluster: api", "    rewrite: {path_regex: '(', path_substitution: /x}"),
			`routes[0].rewrite.path_regex: invalid regular expression`},
		{"rewrite substitution alone", routeHead + lines("    cluster: api", "    rewrite: {path_substitution: /x}"),
			`routes[0].rewrite.path_substitution: needs path_regex`},
		{"rewrite prefix and regex", routeHead + lines("    cluster: api", "    match: {path_prefix: /a/}", "    rewrite: {path_prefix: /b/, path_regex: a}"),
			`routes[0].rewrite.path_regex: set path_prefix or path_regex, not both`},
		{"rewrite prefix without prefix match", routeHead + lines("    cluster: api", "    rewrite: {path_prefix: /b/}"),
			`routes[0].rewrite.path_prefix: needs match.path_prefix or match.path_exact`},
		{"rewrite host and keep", routeHead + lines("    cluster: api", "    rewrite: {host: b, keep_host: true}"),
			`routes[0].rewrite.keep_host: set host or keep_host, not both`},
		{"rewrite on a redirect", routeHead + lines("    redirect: {path: /x}", "    rewrite: {host: b}"),
			`routes[0].rewrite: only a route that sends to a cluster rewrites its requests`},
		{"request op on an owned field", routeHead + lines("    cluster: api", "    request_header_ops: {set: {Host: x}}"),
			`routes[0].request_header_ops.set.Host: "Host" is set by the proxy or the framing, not by a route`},
		{"response op removes an owned field", routeHead + lines("    cluster: api", "    response_header_ops: {remove: [Age]}"),
			`routes[0].response_header_ops.remove[0]: "Age" is set by the proxy or the framing, not by a route`},
		{"op bad value", routeHead + lines("    cluster: api", "    response_header_ops: {add: {X-A: ' a'}}"),
			`routes[0].response_header_ops.add.X-A: invalid header value " a"`},
		{"key query keep and drop", routeHead + lines("    cluster: api", "    cache:", "      key: {query: {keep: [id], drop: [utm]}}"),
			`zerohop.yaml:8: routes[0].cache.key.query.drop: set keep or drop, not both`},
		{"key query empty", routeHead + lines("    cluster: api", "    cache:", "      key: {query: {}}"),
			`routes[0].cache.key.query: set keep, drop or sort`},
		{"key query twice", routeHead + lines("    cluster: api", "    cache:", "      key: {query: {drop: [a, a]}}"),
			`routes[0].cache.key.query.drop[1]: parameter "a" is listed twice`},
		{"key header host", routeHead + lines("    cluster: api", "    cache:", "      key: {headers: [host]}"),
			`routes[0].cache.key.headers[0]: "host" cannot be a key part`},
		{"key header bad", routeHead + lines("    cluster: api", "    cache:", "      key: {headers: ['a b']}"),
			`routes[0].cache.key.headers: invalid header name "a b"`},
		{"route default ttl negative", routeHead + lines("    cluster: api", "    cache:", "      default_ttl: -1s"),
			`zerohop.yaml:8: routes[0].cache.default_ttl: invalid duration "-1s": must not be negative`},
		{"targeted field bad", lines("cache:", "  targeted_fields: ['CDN Cache-Control']"),
			`zerohop.yaml:2: cache.targeted_fields: invalid header name "CDN Cache-Control"`},
		{"op set and add", routeHead + lines("    cluster: api", "    request_header_ops: {add: {X-A: a}, set: {x-a: b}}"),
			`routes[0].request_header_ops.add.X-A: "X-A" is also in set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("zerohop.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v); want error %q", c, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) != 1 {
				t.Errorf("want exactly one error, got:\n%v", err)
			}
		})
	}
}

func TestGoodRouteConfigs(t *testing.T) {
	for _, y := range []string{
		routeHead + lines("    cluster: api", "    match: {path_regex: '/v[0-9]+/items/[0-9]+'}"),
		routeHead + lines("    direct_response: {status: 204}"),
		routeHead + lines("    match: {path_exact: /old}", "    redirect: {status: 301, path_prefix: /new}"),
		routeHead + lines("    redirect: {scheme: https}"),
		lines("cache:", "  targeted_fields: []"),
		routeHead + lines("    cluster: api", "    match: {path_prefix: /v1/}", "    rewrite: {path_prefix: /, keep_host: true}"),
	} {
		if _, err := Parse("zerohop.yaml", []byte(y)); err != nil {
			t.Errorf("%s: %v", y, err)
		}
	}
}

func TestTargetedFieldsDefaultAndOff(t *testing.T) {
	c, err := Parse("zerohop.yaml", []byte(""))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Cache.TargetedFields, ","); got != "Zerohop-Cache-Control,CDN-Cache-Control" {
		t.Errorf("default targeted_fields %q", got)
	}
	c, err = Parse("zerohop.yaml", []byte("cache: {targeted_fields: []}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Cache.TargetedFields) != 0 {
		t.Errorf("targeted_fields: [] gave %q, want none", c.Cache.TargetedFields)
	}
}
