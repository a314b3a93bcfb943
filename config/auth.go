package config

import (
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Authenticator is one named check of the callers of a listener or a
// route: an API key, a JWT, or an IP allow/deny list. Exactly one of
// APIKey, JWT and IP is set. Listeners and routes list the names they
// require (Listener.Auth, Route.Auth); every listed check must pass, in
// order, before the cache is looked at (docs/auth.md). An authenticator
// nobody references is still validated, and its files are not read.
type Authenticator struct {
	// Name is referenced by listeners[].auth and routes[].auth. Required,
	// unique.
	Name string `yaml:"name"`
	// APIKey checks a key from a request field or query parameter against
	// a file of salted hashes.
	APIKey *APIKeyAuth `yaml:"api_key,omitempty"`
	// JWT checks a bearer token's signature and claims.
	JWT *JWTAuth `yaml:"jwt,omitempty"`
	// IP allows or denies callers by their address.
	IP *IPAuth `yaml:"ip,omitempty"`
}

// APIKeyAuth authenticates callers by an API key. The key file has one
// key a line, "consumer:salt:hex(sha256(salt || key))" (blank lines and
// lines starting with '#' are skipped); see docs/auth.md for why a
// salted SHA-256 and how to write a line. Replacing the file (a rename,
// a Kubernetes Secret's "..data" swap, a rewrite) rotates the keys
// without a restart; a file with a bad line is refused as a whole, the
// old keys stay, and the refusal is logged and counted in
// zerohop_auth_reloads_total{result="error"}.
type APIKeyAuth struct {
	// File holds the keys' hashes. Required.
	File string `yaml:"file"`
	// Header is the request field carrying the key. Default "X-Api-Key"
	// when Query is not set; "" with Query set reads the query only.
	Header string `yaml:"header"`
	// Query is a query parameter carrying the key, read when Header is
	// absent from the request. Default "" (none). A key in the URL is part
	// of the cache key and of the access log's target: prefer a field.
	Query string `yaml:"query"`
	// StripCredential removes the key's field from the request sent
	// upstream. Default false. Not allowed with Query (the query is part
	// of the cache key and is forwarded as received).
	StripCredential bool `yaml:"strip_credential"`
	// Realm is the realm of the WWW-Authenticate challenge. Default
	// "zerohop".
	Realm string `yaml:"realm"`
}

// JWTAuth authenticates callers by a JSON Web Token (RFC 7519) in
// "Authorization: Bearer <token>" (RFC 6750). The signature is checked
// with a key bound to one algorithm (RSA keys to RS256, P-256 keys to
// ES256, Ed25519 keys to EdDSA, secrets to HS256), so a token cannot
// choose how its key is used ("alg": "none" and RS256-to-HS256 key
// confusion are refused). Verified tokens are remembered until they
// expire (CacheSize), so a repeated token costs a map lookup.
type JWTAuth struct {
	// Algorithms allowed: RS256, ES256, EdDSA, HS256. Default [RS256,
	// ES256, EdDSA]; HS256 only when listed (with HMACSecretFile).
	Algorithms []string `yaml:"algorithms"`
	// JWKSFile is a JSON Web Key Set file (RFC 7517), re-read when it
	// changes. One of JWKSFile, JWKSURL and HMACSecretFile is required.
	JWKSFile string `yaml:"jwks_file"`
	// JWKSURL is an http(s) URL serving a JSON Web Key Set, fetched at
	// start, every RefreshInterval, and when a token names a key id not
	// in the set (at most once per MinRefreshInterval). Default "".
	JWKSURL string `yaml:"jwks_url"`
	// HMACSecretFile holds the HS256 secret (the file's bytes, a trailing
	// newline removed; at least 32 bytes). Requires HS256 in Algorithms.
	// Default "".
	HMACSecretFile string `yaml:"hmac_secret_file"`
	// RefreshInterval is how often JWKSURL is fetched again. Default 5m.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// MinRefreshInterval bounds fetches caused by unknown key ids.
	// Default 10s.
	MinRefreshInterval time.Duration `yaml:"min_refresh_interval"`
	// Issuer, if set, must equal the token's "iss". Default "" (not
	// checked).
	Issuer string `yaml:"issuer"`
	// Audiences, if set, must contain one of the token's "aud" values.
	// Default empty (not checked).
	Audiences []string `yaml:"audiences"`
	// ClockSkew is allowed on "exp" and "nbf". Default 30s.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// RequireExpiry refuses tokens without "exp". Default true.
	RequireExpiry bool `yaml:"require_expiry"`
	// ConsumerClaim is the string claim that names the consumer (the
	// access log's consumer, the key of per-consumer limits). Default
	// "sub"; a token without it is refused.
	ConsumerClaim string `yaml:"consumer_claim"`
	// RequireClaims are string claims that must have the given value (a
	// claim holding a list must contain it; "scope" is also split on
	// spaces). A token missing one is answered 403
	// (error="insufficient_scope"). Default empty.
	RequireClaims map[string]string `yaml:"require_claims"`
	// StripCredential removes the Authorization field from the request
	// sent upstream. Default false.
	StripCredential bool `yaml:"strip_credential"`
	// Realm is the realm of the WWW-Authenticate challenge. Default
	// "zerohop".
	Realm string `yaml:"realm"`
	// CacheSize is how many verified tokens are remembered (until their
	// expiry or a key set change; tokens over 8 KiB are not). Default
	// 10000; 0 = none.
	CacheSize int `yaml:"cache_size"`
}

// IPAuth allows or denies callers by their IP address (the connection's
// peer; IPv4-mapped IPv6 addresses are compared as IPv4). A caller in
// Deny is refused; if Allow is set, a caller not in it is refused too.
// Refusals answer 403.
type IPAuth struct {
	// Allow lists CIDR prefixes or addresses ("10.0.0.0/8", "::1").
	// Default empty = every address not denied.
	Allow []string `yaml:"allow"`
	// Deny lists CIDR prefixes or addresses, checked first. Default empty.
	Deny []string `yaml:"deny"`
}

// DefaultAuthRealm is the realm of the auth challenges.
const DefaultAuthRealm = "zerohop"

// JWT algorithms an authenticator may allow.
var JWTAlgorithms = []string{"RS256", "ES256", "EdDSA", "HS256"}

func (a *APIKeyAuth) setDefaults() { a.Header, a.Realm = "X-Api-Key", DefaultAuthRealm }

func (j *JWTAuth) setDefaults() {
	j.Algorithms = []string{"RS256", "ES256", "EdDSA"}
	j.RefreshInterval = 5 * time.Minute
	j.MinRefreshInterval = 10 * time.Second
	j.ClockSkew = 30 * time.Second
	j.RequireExpiry = true
	j.ConsumerClaim = "sub"
	j.Realm = DefaultAuthRealm
	j.CacheSize = 10000
}

// ParsePrefix reads an IP list entry: a CIDR prefix or an address (a
// prefix of its full length), IPv4-mapped addresses unmapped.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// auth validates the top-level auth list and returns the names defined.
func (v *validator) auth(as []Authenticator) map[string]string {
	seen := map[string]string{}
	for i := range as {
		a := &as[i]
		p := fmt.Sprintf("auth[%d]", i)
		v.name(p+".name", "authenticator", a.Name, seen)
		n := 0
		if a.APIKey != nil {
			n++
			v.apiKey(p+".api_key", a.APIKey)
		}
		if a.JWT != nil {
			n++
			v.jwt(p+".jwt", a.JWT)
		}
		if a.IP != nil {
			n++
			v.ipAuth(p+".ip", a.IP)
		}
		if n != 1 {
			v.errorf(p, "set exactly one of api_key, jwt and ip (%d set)", n)
		}
	}
	return seen
}

func (v *validator) apiKey(p string, a *APIKeyAuth) {
	if a.File == "" {
		v.errorf(p+".file", "the key file is required")
	}
	if v.set(p+".query") && !v.set(p+".header") {
		a.Header = "" // the query alone, unless a field was asked for too
	}
	if a.Header == "" && a.Query == "" {
		v.errorf(p+".header", "set header or query: where the key is read from")
	}
	if a.Header != "" && !isToken(a.Header) {
		v.errorf(p+".header", "invalid field name %q", clip(a.Header))
	}
	if a.Query != "" && a.StripCredential {
		v.errorf(p+".strip_credential", "not supported with query: the query is forwarded as received (use header)")
	}
	if strings.ContainsAny(a.Realm, "\"\\\r\n") {
		v.errorf(p+".realm", "a realm must not contain quotes, backslashes or line breaks")
	}
}

func (v *validator) jwt(p string, j *JWTAuth) {
	if len(j.Algorithms) == 0 {
		v.errorf(p+".algorithms", "at least one algorithm is required (%s)", strings.Join(JWTAlgorithms, ", "))
	}
	hs := false
	for i, alg := range j.Algorithms {
		switch {
		case strings.EqualFold(alg, "none"):
			v.errorf(fmt.Sprintf("%s.algorithms[%d]", p, i), `"none" is never allowed: an unsigned token proves nothing`)
		case !slices.Contains(JWTAlgorithms, alg):
			v.errorf(fmt.Sprintf("%s.algorithms[%d]", p, i), "unsupported algorithm %q; use %s", clip(alg), strings.Join(JWTAlgorithms, ", "))
		case alg == "HS256":
			hs = true
		}
	}
	n := 0
	for _, s := range []string{j.JWKSFile, j.JWKSURL, j.HMACSecretFile} {
		if s != "" {
			n++
		}
	}
	if n == 0 {
		v.errorf(p, "set jwks_file, jwks_url or hmac_secret_file: where the keys come from")
	}
	if j.JWKSFile != "" && j.JWKSURL != "" {
		v.errorf(p+".jwks_url", "set jwks_file or jwks_url, not both")
	}
	if j.HMACSecretFile != "" && !hs {
		v.errorf(p+".hmac_secret_file", "an HMAC secret needs HS256 listed in algorithms")
	}
	if hs && j.HMACSecretFile == "" && j.JWKSFile == "" && j.JWKSURL == "" {
		v.errorf(p+".hmac_secret_file", "HS256 needs a secret")
	}
	if j.JWKSURL != "" {
		if !strings.HasPrefix(j.JWKSURL, "https://") && !strings.HasPrefix(j.JWKSURL, "http://") {
			v.errorf(p+".jwks_url", "want an http or https URL, got %q", clip(j.JWKSURL))
		}
	}
	v.positive(p+".refresh_interval", j.RefreshInterval)
	v.positive(p+".min_refresh_interval", j.MinRefreshInterval)
	v.nonNegative(p+".clock_skew", j.ClockSkew)
	if j.ConsumerClaim == "" {
		v.errorf(p+".consumer_claim", "a claim naming the consumer is required")
	}
	for name, want := range j.RequireClaims {
		if name == "" || want == "" {
			v.errorf(p+".require_claims", "a required claim needs a name and a value")
		}
	}
	if j.CacheSize < 0 {
		v.errorf(p+".cache_size", "must be >= 0")
	}
	if strings.ContainsAny(j.Realm, "\"\\\r\n") {
		v.errorf(p+".realm", "a realm must not contain quotes, backslashes or line breaks")
	}
}

func (v *validator) ipAuth(p string, a *IPAuth) {
	if len(a.Allow) == 0 && len(a.Deny) == 0 {
		v.errorf(p, "set allow or deny")
	}
	for k, list := range map[string][]string{"allow": a.Allow, "deny": a.Deny} {
		for i, s := range list {
			if _, err := ParsePrefix(s); err != nil {
				v.errorf(fmt.Sprintf("%s.%s[%d]", p, k, i), "want an IP address or CIDR prefix: %v", err)
			}
		}
	}
}

// authRefs checks that the names a listener or route requires exist.
func (v *validator) authRefs(p string, names []string, defined map[string]string) {
	for i, n := range names {
		if _, ok := defined[n]; !ok {
			v.errorf(fmt.Sprintf("%s[%d]", p, i), "unknown authenticator %q%s", clip(n), authHint(n, defined))
		}
		if slices.Index(names, n) != i {
			v.errorf(fmt.Sprintf("%s[%d]", p, i), "authenticator %q listed twice", clip(n))
		}
	}
}

// CredentialField returns the request field a reads its credential from
// ("Authorization" for JWT), or "" for none (an IP list, a query
// parameter).
func (a *Authenticator) CredentialField() string {
	switch {
	case a.JWT != nil:
		return "Authorization"
	case a.APIKey != nil && a.APIKey.Header != "":
		return http.CanonicalHeaderKey(a.APIKey.Header)
	}
	return ""
}

// authUses checks the listeners' and routes' auth references.
func (v *validator) authUses(c *Config) {
	defined := v.auth(c.Auth)
	for i := range c.Listeners {
		v.authRefs(fmt.Sprintf("listeners[%d].auth", i), c.Listeners[i].Auth, defined)
	}
	for i := range c.Routes {
		v.authRefs(fmt.Sprintf("routes[%d].auth", i), c.Routes[i].Auth, defined)
	}
}

// authHint helps with a reference to an authenticator not defined.
func authHint(name string, defined map[string]string) string {
	if len(defined) == 0 {
		return "; define it in the top-level auth list"
	}
	keys := slices.Sorted(maps.Keys(defined))
	for _, k := range keys {
		if editDistance(name, k) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return "; defined: " + strings.Join(keys, ", ")
}
