package jwtcheck

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	rsaKey, _       = rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _        = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ = ed25519.GenerateKey(rand.Reader)
)

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwks returns a key set with the given keys (kid -> public key).
func jwks(t testing.TB, keys map[string]any) []byte {
	t.Helper()
	var out []map[string]string
	for kid, k := range keys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			out = append(out, map[string]string{"kty": "RSA", "kid": kid, "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PublicKey:
			b, _ := k.Bytes()
			out = append(out, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "x": enc(b[1:33]), "y": enc(b[33:])})
		case ed25519.PublicKey:
			out = append(out, map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": enc(k)})
		}
	}
	b, err := json.Marshal(map[string]any{"keys": out})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(t testing.TB, m jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var now = time.Unix(1_800_000_000, 0)

func claims(kv ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "iss": "https://idp", "aud": "api", "exp": now.Add(time.Hour).Unix()}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func newVerifier(t testing.TB, algs []string, keys []byte) *Verifier {
	t.Helper()
	v := New(Options{Algorithms: algs, Issuer: "https://idp", Audiences: []string{"api"}, ClockSkew: 30 * time.Second,
		RequireExpiry: true, ConsumerClaim: "sub", RequireClaims: map[string]string{}, CacheSize: 100,
		Now: func() time.Time { return now }})
	ks, err := ParseJWKS(keys)
	if err != nil {
		t.Fatal(err)
	}
	set, err := NewKeySet(ks, algs)
	if err != nil {
		t.Fatal(err)
	}
	v.SetKeys(set)
	return v
}

// TestVerify: the checks a token must pass, each refusal with its error.
func TestVerify(t *testing.T) {
	algs := []string{"RS256", "ES256", "EdDSA"}
	v := newVerifier(t, algs, jwks(t, map[string]any{"r1": &rsaKey.PublicKey, "e1": &ecKey.PublicKey, "d1": edPub}))
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, tt := range []struct {
		name  string
		token string
		want  error
	}{
		{"RS256 valid", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims()), nil},
		{"ES256 valid", sign(t, jwt.SigningMethodES256, "e1", ecKey, claims()), nil},
		{"EdDSA valid", sign(t, jwt.SigningMethodEdDSA, "d1", edKey, claims()), nil},
		{"no kid: tried with the keys of its algorithm", sign(t, jwt.SigningMethodRS256, "", rsaKey, claims()), nil},
		{"aud list holding api", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("aud", []string{"x", "api"})), nil},
		{"expired within the skew", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("exp", now.Add(-20*time.Second).Unix())), nil},
		{"expired", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("exp", now.Add(-time.Minute).Unix())), ErrExpired},
		{"not yet valid", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("nbf", now.Add(time.Minute).Unix())), ErrNotYet},
		{"nbf within the skew", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("nbf", now.Add(20*time.Second).Unix())), nil},
		{"no exp", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("exp", nil)), ErrMalformed},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("iss", "https://evil")), ErrIssuer},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("aud", "other")), ErrAudience},
		{"no audience", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("aud", nil)), ErrAudience},
		{"no consumer", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("sub", nil)), ErrConsumer},
		{"bad signature (another key)", sign(t, jwt.SigningMethodRS256, "r1", otherRSA, claims()), ErrSignature},
		{"bad signature (altered claims)", alter(sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims())), ErrSignature},
		{"alg none", noneTok, ErrSignature},
		{"RS256-to-HS256 confusion (the RSA public key PEM as secret)", sign(t, jwt.SigningMethodHS256, "r1", pubPEM, claims()), ErrSignature},
		{"RS256-to-HS256 confusion, no kid", sign(t, jwt.SigningMethodHS256, "", pubPEM, claims()), ErrSignature},
		{"key of another algorithm (ES256 token, RSA kid)", sign(t, jwt.SigningMethodES256, "r1", ecKey, claims()), ErrSignature},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, "zz", rsaKey, claims()), ErrUnknownKey},
		{"garbage", "a.b.c", ErrMalformed},
		{"not a JWT", "hello", ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.token)
			if tt.want == nil {
				if err != nil || c != "alice" {
					t.Fatalf("Verify = %q, %v; want alice", c, err)
				}
				// Again, from the cache.
				if c, err := v.Verify(tt.token); err != nil || c != "alice" {
					t.Fatalf("cached: Verify = %q, %v; want alice", c, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %q, %v; want %v", c, err, tt.want)
			}
		})
	}
}

// alter changes the claims of a signed token, keeping the signature.
func alter(tok string) string {
	p := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(p[1])
	b = []byte(strings.Replace(string(b), `"alice"`, `"admin"`, 1))
	p[1] = enc(b)
	return strings.Join(p, ".")
}

// TestHS256OnlyWhenAllowed: an HMAC secret verifies HS256 tokens when
// HS256 is allowed; an HS256 token is refused when it is not, even with
// the right secret among the keys.
func TestHS256OnlyWhenAllowed(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	tok := sign(t, jwt.SigningMethodHS256, "", secret, claims())
	for _, tt := range []struct {
		algs []string
		want error
	}{{[]string{"HS256"}, nil}, {[]string{"RS256", "HS256"}, nil}} {
		v := New(Options{Algorithms: tt.algs, Issuer: "https://idp", Audiences: []string{"api"}, Now: func() time.Time { return now }})
		set, err := NewKeySet([]Key{{Alg: "HS256", Key: secret}, {ID: "r1", Alg: "RS256", Key: &rsaKey.PublicKey}}, tt.algs)
		if err != nil {
			t.Fatal(err)
		}
		v.SetKeys(set)
		if _, err := v.Verify(tok); !errors.Is(err, tt.want) {
			t.Errorf("%v: %v; want %v", tt.algs, err, tt.want)
		}
	}
	v := New(Options{Algorithms: []string{"RS256"}, Now: func() time.Time { return now }})
	set, _ := NewKeySet([]Key{{Alg: "HS256", Key: secret}, {ID: "r1", Alg: "RS256", Key: &rsaKey.PublicKey}}, []string{"RS256"})
	v.SetKeys(set)
	if _, err := v.Verify(tok); !errors.Is(err, ErrSignature) {
		t.Errorf("HS256 not allowed: %v; want ErrSignature", err)
	}
}

// TestCachedTokenExpires: a cached verdict ends with the token's expiry,
// and with the key set it was made with.
func TestCachedTokenExpires(t *testing.T) {
	clock := now
	v := New(Options{Algorithms: []string{"RS256"}, CacheSize: 10, RequireExpiry: true, Now: func() time.Time { return clock }})
	ks, _ := ParseJWKS(jwks(t, map[string]any{"r1": &rsaKey.PublicKey}))
	set, _ := NewKeySet(ks, []string{"RS256"})
	v.SetKeys(set)
	tok := sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("exp", now.Add(time.Minute).Unix()))
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(2 * time.Minute)
	if _, err := v.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("after expiry: %v; want ErrExpired", err)
	}
	clock = now
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	ks, _ = ParseJWKS(jwks(t, map[string]any{"r2": &other.PublicKey}))
	set, _ = NewKeySet(ks, []string{"RS256"})
	v.SetKeys(set)
	if _, err := v.Verify(tok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("after its key left the set: %v; want ErrUnknownKey", err)
	}
}

// TestJWKSURLRotation: a token signed with a key the served set gained
// later is verified after one fetch; fetches for unknown key ids are
// bounded by MinRefreshInterval.
func TestJWKSURLRotation(t *testing.T) {
	var body atomic.Pointer[[]byte]
	var fetches atomic.Int64
	b := jwks(t, map[string]any{"r1": &rsaKey.PublicKey})
	body.Store(&b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write(*body.Load())
	}))
	defer srv.Close()
	v := New(Options{Algorithms: []string{"RS256", "ES256"}, RequireExpiry: true, CacheSize: 10, Now: func() time.Time { return now }})
	if _, err := NewSource(v, SourceOptions{JWKSURL: srv.URL, Algorithms: []string{"RS256", "ES256"}, MinRefreshInterval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims())); err != nil {
		t.Fatal(err)
	}
	// Rotation: the issuer adds e2 and signs with it.
	b2 := jwks(t, map[string]any{"r1": &rsaKey.PublicKey, "e2": &ecKey.PublicKey})
	body.Store(&b2)
	// The last fetch was just now: within MinRefreshInterval an unknown
	// kid does not fetch.
	if _, err := v.Verify(sign(t, jwt.SigningMethodES256, "e2", ecKey, claims())); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("within the refresh bound: %v; want ErrUnknownKey", err)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches; want 1 (the bound holds)", n)
	}
	v2 := New(Options{Algorithms: []string{"RS256", "ES256"}, RequireExpiry: true, Now: func() time.Time { return now }})
	body.Store(&b)
	if _, err := NewSource(v2, SourceOptions{JWKSURL: srv.URL, Algorithms: []string{"RS256", "ES256"}, MinRefreshInterval: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	body.Store(&b2)
	if c, err := v2.Verify(sign(t, jwt.SigningMethodES256, "e2", ecKey, claims())); err != nil || c != "alice" {
		t.Fatalf("after rotation: %q, %v", c, err)
	}
}

// TestBadKeySets: garbage and unusable sets are errors, never a panic.
func TestBadKeySets(t *testing.T) {
	for _, s := range []string{``, `{`, `{"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}`,
		`{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}`,
		`{"keys": [{"kty": "RSA", "n": "` + enc(big.NewInt(12345).Bytes()) + `", "e": "AQAB"}]}`,
		`{"keys": [{"kty": "oct", "k": "c2hvcnQ"}]}`} {
		if _, err := ParseJWKS([]byte(s)); !errors.Is(err, ErrKeySet) {
			t.Errorf("%q: %v; want ErrKeySet", s, err)
		}
	}
	// Only keys of algorithms not allowed: no set.
	ks, _ := ParseJWKS(jwks(t, map[string]any{"e": &ecKey.PublicKey}))
	if _, err := NewKeySet(ks, []string{"RS256"}); !errors.Is(err, ErrKeySet) {
		t.Errorf("no usable key: %v", err)
	}
	// A missing file is an error at start.
	v := New(Options{Algorithms: []string{"RS256"}})
	if _, err := NewSource(v, SourceOptions{JWKSFile: filepath.Join(t.TempDir(), "none.json"), Algorithms: []string{"RS256"}}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// BenchmarkVerifyCached: a repeated RS256 token, answered from the cache.
func BenchmarkVerifyCached(b *testing.B) {
	v := newVerifier(b, []string{"RS256"}, jwks(b, map[string]any{"r1": &rsaKey.PublicKey}))
	tok := sign(b, jwt.SigningMethodRS256, "r1", rsaKey, claims())
	if _, err := v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyNew: an RS256 token seen for the first time (the cache
// off): parsing, the signature, the claims.
func BenchmarkVerifyNew(b *testing.B) {
	for _, alg := range []struct {
		name string
		m    jwt.SigningMethod
		kid  string
		key  any
	}{{"RS256", jwt.SigningMethodRS256, "r1", rsaKey}, {"ES256", jwt.SigningMethodES256, "e1", ecKey}, {"EdDSA", jwt.SigningMethodEdDSA, "d1", edKey}} {
		b.Run(alg.name, func(b *testing.B) {
			algs := []string{"RS256", "ES256", "EdDSA"}
			v := newVerifier(b, algs, jwks(b, map[string]any{"r1": &rsaKey.PublicKey, "e1": &ecKey.PublicKey, "d1": edPub}))
			v.cache = nil
			tok := sign(b, alg.m, alg.kid, alg.key, claims())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRSAVerifyBare is the RSA-2048 signature check alone, for
// comparison with BenchmarkVerifyNew/RS256 on the same machine.
func BenchmarkRSAVerifyBare(b *testing.B) {
	tok := sign(b, jwt.SigningMethodRS256, "r1", rsaKey, claims())
	p := strings.Split(tok, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(p[2])
	b.ReportAllocs()
	for b.Loop() {
		if err := jwt.SigningMethodRS256.Verify(p[0]+"."+p[1], sig, &rsaKey.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}
