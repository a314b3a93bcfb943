package proxy_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

var authRSA, _ = rsa.GenerateKey(rand.Reader, 2048)

// authUpstream serves a shared-cacheable response (public: RFC 9111
// §3.5 lets a shared cache store it for an authenticated request) and
// says which credential fields reached it.
func authUpstream(w http.ResponseWriter, r *http.Request, n int64) {
	cc := "public, max-age=60"
	if strings.HasPrefix(r.URL.Path, "/private") {
		cc = "max-age=60" // no public: §3.5 forbids storing it for an authenticated request
	}
	w.Header().Set("Cache-Control", cc)
	w.Header().Set("X-Auth-Seen", r.Header.Get("Authorization"))
	w.Header().Set("X-Key-Seen", r.Header.Get("X-Api-Key"))
	fmt.Fprintf(w, "body %d", n)
}

func writeJWKS(t *testing.T, path string, keys map[string]*rsa.PublicKey) {
	t.Helper()
	var out []map[string]string
	for kid, k := range keys {
		out = append(out, map[string]string{"kty": "RSA", "kid": kid, "use": "sig",
			"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
	}
	b, _ := json.Marshal(map[string]any{"keys": out})
	writeAtomic(t, path, b)
}

// writeAtomic replaces path by a rename, as a deployment tool does.
func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func token(t *testing.T, m jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

// TestJWTAuthBothPaths: a route with a jwt authenticator, behind the
// fast path and behind net/http alone, answers the same: 401 with an RFC
// 6750 challenge for a missing or bad token (expired, not yet valid,
// wrong issuer or audience, bad signature, alg none, RS256-to-HS256 key
// confusion), 403 for a missing required claim; the refusals never reach
// the upstream, and a response cached for a valid token is never served
// to a caller without one. The consumer reaches the access log, and the
// token is stripped from the upstream request.
func TestJWTAuthBothPaths(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			dir := t.TempDir()
			jwks := filepath.Join(dir, "jwks.json")
			writeJWKS(t, jwks, map[string]*rsa.PublicKey{"k1": &authRSA.PublicKey})
			clk := newClock()
			h := newHarness(t, harnessOptions{handler: authUpstream, clock: clk, plainServer: plain, config: func(c *config.Config) {
				c.Auth = []config.Authenticator{{Name: "users", JWT: &config.JWTAuth{
					Algorithms: []string{"RS256"}, JWKSFile: jwks, Issuer: "https://idp", Audiences: []string{"api"},
					ClockSkew: 30 * time.Second, RequireExpiry: true, ConsumerClaim: "sub",
					RequireClaims: map[string]string{"scope": "read"}, StripCredential: true, Realm: "zerohop", CacheSize: 100,
				}}}
				c.Routes[0].Auth = []string{"users"}
			}})
			now := clk.Now()
			claims := func(kv ...any) jwt.MapClaims {
				c := jwt.MapClaims{"sub": "alice", "iss": "https://idp", "aud": "api", "scope": "read write",
					"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix()}
				for i := 0; i < len(kv); i += 2 {
					c[kv[i].(string)] = kv[i+1]
				}
				return c
			}
			pubDER, _ := x509.MarshalPKIXPublicKey(&authRSA.PublicKey)
			pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
			other, _ := rsa.GenerateKey(rand.Reader, 2048)
			none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
			valid := token(t, jwt.SigningMethodRS256, "k1", authRSA, claims())

			// The cache is filled by an authenticated request.
			r := h.get("/doc", "Authorization", valid, "X-Request-Id", "jwt-fill")
			if r.StatusCode != 200 || r.Header.Get("X-Auth-Seen") != "" {
				t.Fatalf("valid token: %d, upstream saw Authorization %q; want 200 and the token stripped", r.StatusCode, r.Header.Get("X-Auth-Seen"))
			}
			if c := logged(h, "jwt-fill", "consumer"); c != "alice" {
				t.Errorf("access log consumer %v; want alice", c)
			}
			if r := h.get("/doc", "Authorization", valid); r.StatusCode != 200 || !strings.Contains(r.cacheStatus(), "hit") {
				t.Fatalf("valid token again: %d %q; want a hit", r.StatusCode, r.cacheStatus())
			}
			hits := h.up.hits.Load()
			for _, tt := range []struct {
				name, auth string
				status     int
				challenge  string
			}{
				{"no token", "", 401, `Bearer realm="zerohop"`},
				{"not bearer", "Basic YWxpY2U6eA==", 401, `Bearer realm="zerohop"`},
				{"expired", token(t, jwt.SigningMethodRS256, "k1", authRSA, claims("exp", now.Add(-time.Hour).Unix())), 401, `error="invalid_token", error_description="token expired"`},
				{"not yet valid", token(t, jwt.SigningMethodRS256, "k1", authRSA, claims("nbf", now.Add(time.Hour).Unix())), 401, `error_description="token not yet valid"`},
				{"wrong issuer", token(t, jwt.SigningMethodRS256, "k1", authRSA, claims("iss", "https://evil")), 401, `error_description="wrong issuer"`},
				{"wrong audience", token(t, jwt.SigningMethodRS256, "k1", authRSA, claims("aud", "other")), 401, `error_description="wrong audience"`},
				{"bad signature", token(t, jwt.SigningMethodRS256, "k1", other, claims()), 401, `error_description="bad signature"`},
				{"alg none", "Bearer " + none, 401, `error="invalid_token"`},
				{"RS256-to-HS256 confusion", token(t, jwt.SigningMethodHS256, "k1", pubPEM, claims()), 401, `error_description="bad signature"`},
				{"unknown kid", token(t, jwt.SigningMethodRS256, "k9", authRSA, claims()), 401, `error_description="unknown key"`},
				{"malformed", "Bearer abc.def", 401, `error_description="malformed token"`},
				{"scope missing", token(t, jwt.SigningMethodRS256, "k1", authRSA, claims("scope", "write")), 403, `error="insufficient_scope"`},
			} {
				hdrs := []string{"X-Request-Id", "jwt-" + tt.name}
				if tt.auth != "" {
					hdrs = append(hdrs, "Authorization", tt.auth)
				}
				r := h.get("/doc", hdrs...)
				if r.StatusCode != tt.status || !strings.Contains(r.Header.Get("WWW-Authenticate"), tt.challenge) ||
					!strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer realm="zerohop"`) {
					t.Errorf("%s: %d %q; want %d with %q", tt.name, r.StatusCode, r.Header.Get("WWW-Authenticate"), tt.status, tt.challenge)
				}
				if strings.Contains(r.body, "body") {
					t.Errorf("%s: the cached body was served: %q", tt.name, r.body)
				}
				if f := logged(h, "jwt-"+tt.name, "filter"); f == nil || !strings.HasPrefix(f.(string), "users") {
					t.Errorf("%s: access log filter %v; want the authenticator's name", tt.name, f)
				}
			}
			if n := h.up.hits.Load(); n != hits {
				t.Errorf("upstream hit %d times by refused requests", n-hits)
			}
			// The verdict ends with the token: the clock moves past exp.
			clk.Advance(2 * time.Hour)
			if r := h.get("/doc", "Authorization", valid); r.StatusCode != 401 {
				t.Errorf("a cached token after its exp: %d; want 401", r.StatusCode)
			}
			if got := counter(t, h.p, "zerohop_auth_results_total", "result", "expired"); got < 2 {
				t.Errorf("expired refusals counted %v; want >= 2", got)
			}
		})
	}
}

// logged returns attribute key of the access-log line of request id,
// waiting for the line (it is written after the response).
func logged(h *harness, id, key string) any {
	var v any
	eventually(func() bool {
		for _, l := range h.logs.records() {
			if l["request_id"] == id {
				v = l[key]
				return true
			}
		}
		return false
	})
	return v
}

// TestJWKSFileRotation: a key added to the JWKS file verifies tokens
// without a restart; a key removed stops verifying; a broken file keeps
// the old keys and is counted.
func TestJWKSFileRotation(t *testing.T) {
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	writeJWKS(t, jwks, map[string]*rsa.PublicKey{"k1": &authRSA.PublicKey})
	clk := newClock()
	h := newHarness(t, harnessOptions{handler: authUpstream, clock: clk, config: func(c *config.Config) {
		c.Auth = []config.Authenticator{{Name: "users", JWT: &config.JWTAuth{Algorithms: []string{"RS256"}, JWKSFile: jwks,
			ConsumerClaim: "sub", RequireExpiry: true, Realm: "zerohop", CacheSize: 100}}}
		c.Routes[0].Auth = []string{"users"}
	}})
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	c := jwt.MapClaims{"sub": "bob", "exp": clk.Now().Add(time.Hour).Unix()}
	t1, t2 := token(t, jwt.SigningMethodRS256, "k1", authRSA, c), token(t, jwt.SigningMethodRS256, "k2", k2, c)
	if r := h.get("/a", "Authorization", t1); r.StatusCode != 200 {
		t.Fatalf("k1: %d", r.StatusCode)
	}
	if r := h.get("/a", "Authorization", t2); r.StatusCode != 401 {
		t.Fatalf("k2 before rotation: %d; want 401", r.StatusCode)
	}
	writeJWKS(t, jwks, map[string]*rsa.PublicKey{"k2": &k2.PublicKey})
	if !eventually(func() bool { return h.get("/a", "Authorization", t2).StatusCode == 200 }) {
		t.Fatal("k2 never accepted after the rotation")
	}
	if r := h.get("/a", "Authorization", t1); r.StatusCode != 401 {
		t.Errorf("k1 after it left the set: %d; want 401", r.StatusCode)
	}
	writeAtomic(t, jwks, []byte(`{"keys": [{"kty": "RSA", "n": "!!"}]}`))
	if !eventually(func() bool { return counter(t, h.p, "zerohop_auth_reloads_total", "result", "error") >= 1 }) {
		t.Fatal("the broken file was not counted")
	}
	if r := h.get("/a", "Authorization", t2); r.StatusCode != 200 {
		t.Errorf("after a broken file: %d; want the old keys kept (200)", r.StatusCode)
	}
}

// TestAPIKeyAuthBothPaths: keys from a field or the query, 401 with an
// ApiKey challenge, the consumer logged, the key stripped upstream, and
// RFC 9111 §3.5 applied to the key field as to Authorization.
func TestAPIKeyAuthBothPaths(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			dir := t.TempDir()
			keys := filepath.Join(dir, "keys")
			writeAtomic(t, keys, []byte("# team keys\n"+proxy.APIKeyLine("svc-a", "s4lt", "key-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")+"\n"))
			h := newHarness(t, harnessOptions{handler: authUpstream, plainServer: plain, config: func(c *config.Config) {
				c.Auth = []config.Authenticator{
					{Name: "keys", APIKey: &config.APIKeyAuth{File: keys, Header: "X-Api-Key", StripCredential: true, Realm: "zerohop"}},
					{Name: "qkeys", APIKey: &config.APIKeyAuth{File: keys, Query: "api_key", Realm: "zerohop"}},
				}
				c.Routes[0].Auth = []string{"keys"}
				c.Routes[0].Match.PathPrefix = "/"
				c.Routes = append([]config.Route{{Name: "q", Cluster: "main", Match: config.Match{PathPrefix: "/q/"}, Auth: []string{"qkeys"}}}, c.Routes...)
			}})
			good := "key-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			r := h.get("/doc", "X-Api-Key", good, "X-Request-Id", "k-1")
			if r.StatusCode != 200 || r.Header.Get("X-Key-Seen") != "" {
				t.Fatalf("good key: %d, upstream saw %q; want 200, the key stripped", r.StatusCode, r.Header.Get("X-Key-Seen"))
			}
			if c := logged(h, "k-1", "consumer"); c != "svc-a" {
				t.Errorf("consumer %v; want svc-a", c)
			}
			if r := h.get("/doc", "X-Api-Key", good); !strings.Contains(r.cacheStatus(), "hit") {
				t.Errorf("public response, again: %q; want a hit", r.cacheStatus())
			}
			hits := h.up.hits.Load()
			for _, tt := range []struct {
				name, key, want string
			}{{"no key", "", `ApiKey realm="zerohop", in="X-Api-Key"`}, {"wrong key", "key-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", `error="invalid_key"`}} {
				kv := []string{}
				if tt.key != "" {
					kv = append(kv, "X-Api-Key", tt.key)
				}
				r := h.get("/doc", kv...)
				if r.StatusCode != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), tt.want) || strings.Contains(r.body, "body") {
					t.Errorf("%s: %d %q %q; want 401 with %q", tt.name, r.StatusCode, r.Header.Get("WWW-Authenticate"), r.body, tt.want)
				}
			}
			if n := h.up.hits.Load(); n != hits {
				t.Errorf("refused requests reached the upstream (%d)", n-hits)
			}
			// §3.5: without public, s-maxage or must-revalidate a response to
			// a request carrying the key field is not stored.
			h.get("/private", "X-Api-Key", good)
			if r := h.get("/private", "X-Api-Key", good); strings.Contains(r.cacheStatus(), "hit") {
				t.Errorf("a private-by-default response to a keyed request was stored: %q", r.cacheStatus())
			}
			// The query parameter.
			if r := h.get("/q/x?api_key=" + good); r.StatusCode != 200 {
				t.Errorf("key in the query: %d", r.StatusCode)
			}
			if r := h.get("/q/x?api_key=nope"); r.StatusCode != 401 {
				t.Errorf("wrong key in the query: %d", r.StatusCode)
			}
		})
	}
}

// TestAPIKeyRotation: replacing the key file rotates the keys without a
// restart; a file with a bad line keeps the old keys and is counted.
func TestAPIKeyRotation(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	oldKey, newKey := "old-0123456789abcdef0123456789ab", "new-0123456789abcdef0123456789ab"
	writeAtomic(t, keys, []byte(proxy.APIKeyLine("a", "x", oldKey)+"\n"))
	h := newHarness(t, harnessOptions{handler: authUpstream, config: func(c *config.Config) {
		c.Auth = []config.Authenticator{{Name: "keys", APIKey: &config.APIKeyAuth{File: keys, Header: "X-Api-Key", Realm: "zerohop"}}}
		c.Routes[0].Auth = []string{"keys"}
	}})
	if r := h.get("/a", "X-Api-Key", oldKey); r.StatusCode != 200 {
		t.Fatalf("old key: %d", r.StatusCode)
	}
	writeAtomic(t, keys, []byte(proxy.APIKeyLine("b", "y", newKey)+"\n"))
	if !eventually(func() bool { return h.get("/a", "X-Api-Key", newKey).StatusCode == 200 }) {
		t.Fatal("the new key was never accepted")
	}
	if r := h.get("/a", "X-Api-Key", oldKey); r.StatusCode != 401 {
		t.Errorf("the old key after rotation: %d; want 401", r.StatusCode)
	}
	writeAtomic(t, keys, []byte("garbage line\n"))
	if !eventually(func() bool { return counter(t, h.p, "zerohop_auth_reloads_total", "result", "error") >= 1 }) {
		t.Fatal("the broken file was not counted")
	}
	if r := h.get("/a", "X-Api-Key", newKey); r.StatusCode != 200 {
		t.Errorf("after a broken file: %d; want the old keys kept", r.StatusCode)
	}
}

// TestIPAuthBothFamilies: a listener's ip authenticator on 127.0.0.1 and
// on ::1, behind the fast path and net/http: allowed, denied (403), and
// an allow list that does not hold the caller (403).
func TestIPAuthBothFamilies(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback:", err)
	} else {
		ln.Close()
	}
	for _, tt := range []struct {
		name        string
		allow, deny []string
		v4, v6      int
	}{
		{"allow both loopbacks", []string{"127.0.0.0/8", "::1/128"}, nil, 200, 200},
		{"deny v4", nil, []string{"127.0.0.1"}, 403, 200},
		{"deny v6", nil, []string{"::1"}, 200, 403},
		{"allow v4 only", []string{"127.0.0.1/32"}, nil, 200, 403},
		{"deny wins over allow", []string{"0.0.0.0/0", "::/0"}, []string{"127.0.0.0/8"}, 403, 200},
		{"mapped v4 entry", []string{"::ffff:127.0.0.1"}, nil, 200, 403},
	} {
		for _, plain := range []bool{false, true} {
			h := newHarness(t, harnessOptions{handler: authUpstream, plainServer: plain, config: func(c *config.Config) {
				c.Auth = []config.Authenticator{{Name: "net", IP: &config.IPAuth{Allow: tt.allow, Deny: tt.deny}}}
				c.Listeners[0].Auth = []string{"net"}
			}})
			v6 := serveAlso(t, h, "[::1]:0", plain)
			if r := h.get("/x"); r.StatusCode != tt.v4 {
				t.Errorf("%s plain=%v: 127.0.0.1: %d; want %d", tt.name, plain, r.StatusCode, tt.v4)
			}
			resp, err := h.client.Get("http://" + v6 + "/x")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.v6 {
				t.Errorf("%s plain=%v: ::1: %d; want %d", tt.name, plain, resp.StatusCode, tt.v6)
			}
		}
	}
}

// serveAlso serves h's listener on a second socket at addr, as the
// harness does on 127.0.0.1, and returns its address.
func serveAlso(t *testing.T, h *harness, addr string, plain bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h.p.Handler(h.lis), MaxHeaderBytes: int(h.lis.MaxHeaderBytes)}
	var l net.Listener = ln
	if !plain {
		l = h.p.FastListener(ln, h.lis, srv)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestAuthReloadAndClose: a reload keeps an unchanged authenticator and
// replaces a changed one (its new key file in use at once); Close stops
// every watcher (no goroutine left).
func TestAuthReloadAndClose(t *testing.T) {
	noLeak(t, func(t *testing.T) {
		dir := t.TempDir()
		k1, k2 := filepath.Join(dir, "k1"), filepath.Join(dir, "k2")
		writeAtomic(t, k1, []byte(proxy.APIKeyLine("one", "s", "key-one-0123456789abcdef0123456")+"\n"))
		writeAtomic(t, k2, []byte(proxy.APIKeyLine("two", "s", "key-two-0123456789abcdef0123456")+"\n"))
		jwks := filepath.Join(dir, "jwks.json")
		writeJWKS(t, jwks, map[string]*rsa.PublicKey{"k1": &authRSA.PublicKey})
		h := newHarness(t, harnessOptions{handler: authUpstream, config: func(c *config.Config) {
			c.Auth = []config.Authenticator{
				{Name: "keys", APIKey: &config.APIKeyAuth{File: k1, Header: "X-Api-Key", Realm: "zerohop"}},
				{Name: "users", JWT: &config.JWTAuth{Algorithms: []string{"RS256"}, JWKSFile: jwks, ConsumerClaim: "sub", Realm: "zerohop"}},
			}
			c.Routes[0].Auth = []string{"keys"}
		}})
		if r := h.get("/a", "X-Api-Key", "key-one-0123456789abcdef0123456"); r.StatusCode != 200 {
			t.Fatalf("key one: %d", r.StatusCode)
		}
		cfg := h.cfg.Clone()
		cfg.Auth[0].APIKey.File = k2
		if err := h.p.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		if r := h.get("/a", "X-Api-Key", "key-two-0123456789abcdef0123456"); r.StatusCode != 200 {
			t.Errorf("after the reload, key two: %d; want 200", r.StatusCode)
		}
		if r := h.get("/a", "X-Api-Key", "key-one-0123456789abcdef0123456"); r.StatusCode != 401 {
			t.Errorf("after the reload, key one: %d; want 401", r.StatusCode)
		}
		// A reload naming a file that does not exist fails; the running
		// configuration keeps serving.
		bad := cfg.Clone()
		bad.Auth[0].APIKey.File = filepath.Join(dir, "none")
		if err := h.p.Reload(bad); err == nil {
			t.Error("a reload with a missing key file succeeded")
		}
		if r := h.get("/a", "X-Api-Key", "key-two-0123456789abcdef0123456"); r.StatusCode != 200 {
			t.Errorf("after a failed reload: %d; want 200", r.StatusCode)
		}
		h.close()
	})
}

// TestJWKSURLRotation: keys from a JWKS URL (a real server on loopback).
// After the identity provider rotates to a new key, a token naming the
// new kid is verified after one fetch (the unknown-kid refresh), and
// made-up kids cause at most one fetch per min_refresh_interval.
func TestJWKSURLRotation(t *testing.T) {
	var set atomic.Pointer[[]byte]
	var fetches atomic.Int64
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwksBytes := func(keys map[string]*rsa.PublicKey) []byte {
		p := filepath.Join(t.TempDir(), "j")
		writeJWKS(t, p, keys)
		b, _ := os.ReadFile(p)
		return b
	}
	b1 := jwksBytes(map[string]*rsa.PublicKey{"k1": &authRSA.PublicKey})
	set.Store(&b1)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(*set.Load())
	}))
	defer idp.Close()
	for _, plain := range []bool{false, true} {
		set.Store(&b1)
		clk := newClock()
		h := newHarness(t, harnessOptions{handler: authUpstream, clock: clk, plainServer: plain, config: func(c *config.Config) {
			c.Auth = []config.Authenticator{{Name: "users", JWT: &config.JWTAuth{Algorithms: []string{"RS256"}, JWKSURL: idp.URL,
				RefreshInterval: time.Hour, MinRefreshInterval: 200 * time.Millisecond, ConsumerClaim: "sub", RequireExpiry: true,
				Realm: "zerohop", CacheSize: 100}}}
			c.Routes[0].Auth = []string{"users"}
		}})
		c := jwt.MapClaims{"sub": "carol", "exp": clk.Now().Add(time.Hour).Unix()}
		if r := h.get("/a", "Authorization", token(t, jwt.SigningMethodRS256, "k1", authRSA, c)); r.StatusCode != 200 {
			t.Fatalf("plain=%v: k1: %d", plain, r.StatusCode)
		}
		b2 := jwksBytes(map[string]*rsa.PublicKey{"k2": &k2.PublicKey})
		set.Store(&b2)
		time.Sleep(250 * time.Millisecond) // past min_refresh_interval since the start's fetch
		if r := h.get("/a", "Authorization", token(t, jwt.SigningMethodRS256, "k2", k2, c)); r.StatusCode != 200 {
			t.Errorf("plain=%v: k2 after the rotation: %d %q; want 200", plain, r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
		// A burst of made-up kids: at most one fetch per interval.
		var bogus []string
		for i := range 20 {
			bogus = append(bogus, token(t, jwt.SigningMethodRS256, fmt.Sprintf("bogus-%d", i), k2, c))
		}
		before, start := fetches.Load(), time.Now()
		for _, tok := range bogus {
			if r := h.get("/a", "Authorization", tok); r.StatusCode != 401 {
				t.Fatalf("plain=%v: unknown kid: %d; want 401", plain, r.StatusCode)
			}
		}
		allowed := 1 + int64(time.Since(start)/(200*time.Millisecond))
		if n := fetches.Load() - before; n > allowed {
			t.Errorf("plain=%v: %d fetches for 20 unknown kids in %v; want at most %d (one per min_refresh_interval)", plain, n, time.Since(start), allowed)
		}
	}
}

// TestListenerAuthGuardsConnect: a forward listener's authenticators
// apply to CONNECT tunnels too, on both paths.
func TestListenerAuthGuardsConnect(t *testing.T) {
	for _, plain := range []bool{false, true} {
		for _, tt := range []struct {
			deny []string
			want int
		}{{[]string{"127.0.0.0/8"}, 403}, {[]string{"10.0.0.0/8"}, 200}} {
			h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: authUpstream, plainServer: plain, config: func(c *config.Config) {
				c.Auth = []config.Authenticator{{Name: "net", IP: &config.IPAuth{Deny: tt.deny}}}
				c.Listeners[0].Auth = []string{"net"}
			}})
			dest := h.up.hostport()
			status, _ := rawRequest(t, h.addr(), "CONNECT "+dest+" HTTP/1.1\r\nHost: "+dest+"\r\n\r\n", 5*time.Second)
			if status != tt.want {
				t.Errorf("plain=%v deny=%v: CONNECT %d; want %d", plain, tt.deny, status, tt.want)
			}
		}
	}
}
