package config

import (
	"strings"
	"testing"
)

// TestAuthConfig: the auth section and its references decode, and each
// bad value is reported with its file, line and field.
func TestAuthConfig(t *testing.T) {
	base := "clusters: [{name: c, endpoints: [{url: 'http://a'}]}]\n"
	good := base + lines(
		"auth:",
		"  - {name: k, api_key: {file: /k}}",
		"  - {name: q, api_key: {file: /k, query: key}}",
		"  - {name: j, jwt: {jwks_url: 'https://idp/jwks'}}",
		"  - {name: h, jwt: {algorithms: [HS256], hmac_secret_file: /s}}",
		"  - {name: i, ip: {allow: ['10.0.0.0/8', '::1'], deny: ['::ffff:10.1.0.0/112']}}",
		"listeners: [{name: l, auth: [i]}]",
		"routes: [{name: r, cluster: c, auth: [k, j]}]",
	)
	c, err := Parse("zerohop.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if k := c.Auth[0].APIKey; k.Header != "X-Api-Key" || k.Realm != DefaultAuthRealm {
		t.Errorf("api_key defaults: %+v", k)
	}
	if q := c.Auth[1].APIKey; q.Header != "" || q.Query != "key" {
		t.Errorf("query alone: header %q query %q; want the query only", q.Header, q.Query)
	}
	if j := c.Auth[2].JWT; strings.Join(j.Algorithms, ",") != "RS256,ES256,EdDSA" || !j.RequireExpiry ||
		j.ConsumerClaim != "sub" || j.ClockSkew.Seconds() != 30 || j.CacheSize != 10000 {
		t.Errorf("jwt defaults: %+v", j)
	}
	if p, _ := ParsePrefix("::ffff:10.1.0.0/112"); p.String() != "10.1.0.0/16" {
		t.Errorf("mapped prefix: %v", p)
	}

	for _, tt := range []struct{ name, yaml, want string }{
		{"two kinds", "auth: [{name: a, api_key: {file: /k}, ip: {allow: ['::1']}}]",
			"zerohop.yaml:2: auth[0]: set exactly one of api_key, jwt and ip (2 set)"},
		{"none", "auth: [{name: a}]", "auth[0]: set exactly one of api_key, jwt and ip (0 set)"},
		{"duplicate name", "auth: [{name: a, ip: {allow: ['::1']}}, {name: a, ip: {allow: ['::1']}}]", `duplicate authenticator name "a"`},
		{"no key file", "auth: [{name: a, api_key: {header: X-K}}]", "auth[0].api_key.file: the key file is required"},
		{"strip with query", "auth: [{name: a, api_key: {file: /k, query: k, strip_credential: true}}]",
			"auth[0].api_key.strip_credential: not supported with query"},
		{"bad header", "auth: [{name: a, api_key: {file: /k, header: 'X Key'}}]", `auth[0].api_key.header: invalid field name`},
		{"alg none", "auth: [{name: a, jwt: {algorithms: [none], jwks_file: /j}}]", `auth[0].jwt.algorithms[0]: "none" is never allowed`},
		{"unknown alg", "auth: [{name: a, jwt: {algorithms: [PS256], jwks_file: /j}}]", `auth[0].jwt.algorithms[0]: unsupported algorithm "PS256"`},
		{"no keys", "auth: [{name: a, jwt: {issuer: x}}]", "auth[0].jwt: set jwks_file, jwks_url or hmac_secret_file"},
		{"secret without HS256", "auth: [{name: a, jwt: {hmac_secret_file: /s}}]", "auth[0].jwt.hmac_secret_file: an HMAC secret needs HS256"},
		{"file and url", "auth: [{name: a, jwt: {jwks_file: /j, jwks_url: 'https://x'}}]", "auth[0].jwt.jwks_url: set jwks_file or jwks_url, not both"},
		{"bad url", "auth: [{name: a, jwt: {jwks_url: 'ftp://x'}}]", "auth[0].jwt.jwks_url: want an http or https URL"},
		{"empty consumer claim", "auth: [{name: a, jwt: {jwks_file: /j, consumer_claim: ''}}]", "auth[0].jwt.consumer_claim: a claim naming the consumer is required"},
		{"negative skew", "auth: [{name: a, jwt: {jwks_file: /j, clock_skew: -1s}}]", "auth[0].jwt.clock_skew"},
		{"quote in realm", "auth: [{name: a, jwt: {jwks_file: /j, realm: 'a\"b'}}]", "auth[0].jwt.realm: a realm must not contain quotes"},
		{"empty ip", "auth: [{name: a, ip: {}}]", "auth[0].ip: set allow or deny"},
		{"bad cidr", "auth: [{name: a, ip: {deny: ['10.0.0.0/33']}}]", "auth[0].ip.deny[0]: want an IP address or CIDR prefix"},
		{"unknown ref", "auth: [{name: users, ip: {allow: ['::1']}}]\nroutes: [{name: r, cluster: c, auth: [user]}]",
			`zerohop.yaml:3: routes[0].auth[0]: unknown authenticator "user" (did you mean "users"?)`},
		{"ref without auth", "listeners: [{name: l, auth: [x]}]", `listeners[0].auth[0]: unknown authenticator "x"; define it in the top-level auth list`},
		{"listed twice", "auth: [{name: a, ip: {allow: ['::1']}}]\nroutes: [{name: r, cluster: c, auth: [a, a]}]", `routes[0].auth[1]: authenticator "a" listed twice`},
		{"negative concurrency", "routes: [{name: r, cluster: c, max_concurrent_requests: -1}]", "routes[0].max_concurrent_requests: must be >= 0"},
		{"per client above route", "routes: [{name: r, cluster: c, max_concurrent_requests: 2, max_concurrent_requests_per_client: 3}]",
			"routes[0].max_concurrent_requests_per_client: 3 is above the route's max_concurrent_requests (2)"},
	} {
		_, err := Parse("zerohop.yaml", []byte(base+tt.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v; want it to contain %q", tt.name, err, tt.want)
		}
	}
}
