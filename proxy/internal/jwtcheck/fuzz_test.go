package jwtcheck

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify: no token, however malformed, panics the verifier or is
// accepted without the signing key.
func FuzzVerify(f *testing.F) {
	v := newVerifier(f, []string{"RS256", "ES256", "EdDSA"}, jwks(f, map[string]any{"r1": &rsaKey.PublicKey}))
	v.o.Now = func() time.Time { return now }
	f.Add(sign(f, jwt.SigningMethodRS256, "r1", rsaKey, claims()))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("eyJhbGciOiJIUzI1NiIsImtpZCI6InIxIn0.e30.AAAA")
	valid := sign(f, jwt.SigningMethodRS256, "r1", rsaKey, claims())
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok)
		if err == nil && tok != valid && c != "alice" {
			t.Fatalf("accepted %q as %q", tok, c)
		}
	})
}

// FuzzParseJWKS: garbage key sets are errors or skipped keys, never a
// panic.
func FuzzParseJWKS(f *testing.F) {
	f.Add(string(jwks(f, map[string]any{"r1": &rsaKey.PublicKey, "e1": &ecKey.PublicKey, "d1": edPub})))
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`)
	f.Add(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQABAQAB"}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseJWKS([]byte(s))
		if err == nil {
			NewKeySet(keys, []string{"RS256", "ES256", "EdDSA", "HS256"})
		}
	})
}
