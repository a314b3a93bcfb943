// Package jwtcheck verifies JSON Web Tokens (RFC 7519) for the proxy's
// jwt authenticator: signatures with keys bound to one algorithm each,
// the registered claims with a clock-skew allowance, a claim naming the
// consumer, and a bounded cache of tokens already verified. Parsing and
// signature checks are github.com/golang-jwt/jwt/v5's.
package jwtcheck

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors of Verify; each is answered 401 except ErrClaims (403).
var (
	ErrMalformed  = errors.New("jwtcheck: malformed token")
	ErrSignature  = errors.New("jwtcheck: bad signature or algorithm")
	ErrUnknownKey = errors.New("jwtcheck: no key for the token")
	ErrExpired    = errors.New("jwtcheck: token expired")
	ErrNotYet     = errors.New("jwtcheck: token not valid yet")
	ErrIssuer     = errors.New("jwtcheck: wrong issuer")
	ErrAudience   = errors.New("jwtcheck: wrong audience")
	ErrClaims     = errors.New("jwtcheck: required claim missing") // authorisation: 403
	ErrConsumer   = errors.New("jwtcheck: no consumer claim")
	ErrNoKeys     = errors.New("jwtcheck: no keys loaded")
)

// Options configure a Verifier. Zero values mean: no issuer or audience
// check, no skew, "sub" names the consumer, no cache.
type Options struct {
	Algorithms    []string // allowed; never "none"
	Issuer        string
	Audiences     []string
	ClockSkew     time.Duration
	RequireExpiry bool
	ConsumerClaim string
	RequireClaims map[string]string
	CacheSize     int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// UnknownKey is called when a token names a key id the set lacks; it
	// may refresh the set (SetKeys) and report whether it did, so the
	// token is checked again. Optional.
	UnknownKey func(kid string) bool
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	o      Options
	parser *jwt.Parser
	keys   atomic.Pointer[KeySet]
	gen    atomic.Uint64 // bumped by SetKeys: cached verdicts of an older set are void

	mu    sync.RWMutex
	cache map[string]verified
}

// maxCachedToken bounds the tokens remembered, so that the cache's memory
// is bounded by CacheSize × 8 KiB whatever an issuer signs.
const maxCachedToken = 8 << 10

type verified struct {
	consumer string
	exp      int64 // unix seconds; 0 = none
	gen      uint64
}

// New returns a Verifier without keys (SetKeys gives them).
func New(o Options) *Verifier {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ConsumerClaim == "" {
		o.ConsumerClaim = "sub"
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(o.Algorithms),
		jwt.WithLeeway(o.ClockSkew),
		jwt.WithTimeFunc(o.Now),
	}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if len(o.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(o.Audiences...))
	}
	if o.RequireExpiry {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	v := &Verifier{o: o, parser: jwt.NewParser(opts...)}
	if o.CacheSize > 0 {
		v.cache = make(map[string]verified, min(o.CacheSize, 1024))
	}
	return v
}

// SetKeys replaces the key set; verdicts cached with the old set are
// dropped (a key removed from the set stops verifying at once).
func (v *Verifier) SetKeys(s *KeySet) {
	v.keys.Store(s)
	v.gen.Add(1)
	if v.cache != nil {
		v.mu.Lock()
		clear(v.cache)
		v.mu.Unlock()
	}
}

// Keys returns the key set in use, or nil.
func (v *Verifier) Keys() *KeySet { return v.keys.Load() }

// Verify checks token and returns its consumer. token may alias request
// bytes: it is copied only when cached. A cached token costs a map
// lookup and an expiry check, without allocating.
func (v *Verifier) Verify(token string) (string, error) {
	gen := v.gen.Load()
	if v.cache != nil {
		v.mu.RLock()
		e, ok := v.cache[token]
		v.mu.RUnlock()
		if ok && e.gen == gen {
			if e.exp == 0 || v.o.Now().Add(-v.o.ClockSkew).Unix() < e.exp {
				return e.consumer, nil
			}
			return "", ErrExpired
		}
	}
	consumer, exp, err := v.verify(token)
	if err != nil && errors.Is(err, ErrUnknownKey) && v.o.UnknownKey != nil {
		if kid := kidOf(err); v.o.UnknownKey(kid) {
			gen = v.gen.Load()
			consumer, exp, err = v.verify(token)
		}
	}
	if err != nil {
		return "", err
	}
	if v.cache != nil && len(token) <= maxCachedToken {
		v.remember(strings.Clone(token), verified{consumer: consumer, exp: exp, gen: gen})
	}
	return consumer, nil
}

func (v *Verifier) remember(token string, e verified) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= v.o.CacheSize {
		// Full: drop some entries (map order is random enough for a
		// cache whose entries all cost the same to rebuild).
		n := max(1, v.o.CacheSize/16)
		for k := range v.cache {
			delete(v.cache, k)
			if n--; n == 0 {
				break
			}
		}
	}
	v.cache[token] = e
}

// kidError carries the key id a token named that the set lacks.
type kidError struct{ kid string }

func (e *kidError) Error() string { return fmt.Sprintf("no key with kid %q", e.kid) }
func (e *kidError) Unwrap() error { return ErrUnknownKey }

func kidOf(err error) string {
	var k *kidError
	if errors.As(err, &k) {
		return k.kid
	}
	return ""
}

func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	ks := v.keys.Load()
	if ks == nil {
		return nil, ErrNoKeys
	}
	alg := t.Method.Alg()
	if kid, ok := t.Header["kid"].(string); ok && kid != "" {
		k := ks.byKid[kid]
		if k == nil {
			return nil, &kidError{kid}
		}
		if k.Alg != alg {
			return nil, fmt.Errorf("%w: key %q is for %s, not %s", ErrSignature, kid, k.Alg, alg)
		}
		return k.Key, nil
	}
	var set jwt.VerificationKeySet
	for i := range ks.keys {
		if ks.keys[i].Alg == alg {
			set.Keys = append(set.Keys, ks.keys[i].Key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w: no %s key", ErrSignature, alg)
	}
	return set, nil
}

func (v *Verifier) verify(token string) (consumer string, exp int64, err error) {
	claims := jwt.MapClaims{}
	_, err = v.parser.ParseWithClaims(token, claims, v.keyFor)
	if err != nil {
		return "", 0, mapError(err)
	}
	c, ok := claims[v.o.ConsumerClaim].(string)
	if !ok || c == "" {
		return "", 0, fmt.Errorf("%w %q", ErrConsumer, v.o.ConsumerClaim)
	}
	for name, want := range v.o.RequireClaims {
		if !hasClaim(claims[name], name, want) {
			return "", 0, fmt.Errorf("%w: %s", ErrClaims, name)
		}
	}
	if e, err := claims.GetExpirationTime(); err == nil && e != nil {
		exp = e.Unix()
	}
	return c, exp, nil
}

// hasClaim reports whether claim value v holds want: equal to a string,
// in a list, or for "scope" one of its space-separated words (RFC 8693).
func hasClaim(v any, name, want string) bool {
	switch x := v.(type) {
	case string:
		if x == want {
			return true
		}
		if name == "scope" || name == "scp" {
			for _, w := range strings.Fields(x) {
				if w == want {
					return true
				}
			}
		}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// mapError turns the library's errors into this package's.
func mapError(err error) error {
	var k *kidError
	switch {
	case errors.As(err, &k):
		return k
	case errors.Is(err, ErrNoKeys):
		return ErrNoKeys
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformed
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrNotYet
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		if strings.Contains(err.Error(), "aud claim") {
			return fmt.Errorf("%w: no aud", ErrAudience)
		}
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrSignature
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}
