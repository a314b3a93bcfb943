package jwtcheck

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// ErrKeySet marks a key set that cannot be used: bad JSON, or no key
// usable with the allowed algorithms.
var ErrKeySet = errors.New("jwtcheck: bad key set")

// Key is a verification key bound to the one algorithm it may verify:
// the binding, not the token's header, decides how the key is used, so a
// token saying "HS256" cannot make an RSA public key an HMAC secret.
type Key struct {
	ID  string // kid; "" if the set gave none
	Alg string // RS256, ES256, EdDSA or HS256
	Key any    // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte
}

// KeySet is an immutable set of keys.
type KeySet struct {
	keys  []Key
	byKid map[string]*Key
}

// NewKeySet returns a set of keys, those of algorithms not in allowed left
// out. It fails when none is left.
func NewKeySet(keys []Key, allowed []string) (*KeySet, error) {
	s := &KeySet{byKid: map[string]*Key{}}
	for _, k := range keys {
		if !contains(allowed, k.Alg) {
			continue
		}
		s.keys = append(s.keys, k)
	}
	for i := range s.keys {
		if id := s.keys[i].ID; id != "" {
			s.byKid[id] = &s.keys[i]
		}
	}
	if len(s.keys) == 0 {
		return nil, fmt.Errorf("%w: no key for the allowed algorithms %v", ErrKeySet, allowed)
	}
	return s, nil
}

// Len is the number of keys in s.
func (s *KeySet) Len() int { return len(s.keys) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// jwk is a JSON Web Key (RFC 7517), the members this package reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	K   string `json:"k"`
}

// ParseJWKS reads a JSON Web Key Set. Each key is bound to the algorithm
// its type implies (RSA: RS256, EC P-256: ES256, OKP Ed25519: EdDSA, oct:
// HS256); a key whose "alg" names another algorithm, whose "use" is not
// "sig", or of another type or curve is skipped. A malformed key of a
// known type is an error: a set the issuer broke is not half used.
func ParseJWKS(data []byte) ([]Key, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeySet, err)
	}
	var out []Key
	for i, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, err := j.key()
		if err != nil {
			return nil, fmt.Errorf("%w: key %d (kid %q): %v", ErrKeySet, i, j.Kid, err)
		}
		if k.Key == nil || (j.Alg != "" && j.Alg != k.Alg) {
			continue
		}
		k.ID = j.Kid
		out = append(out, k)
	}
	return out, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func (j *jwk) key() (Key, error) {
	switch j.Kty {
	case "RSA":
		n, err := b64(j.N)
		if err != nil || len(n) == 0 {
			return Key{}, errors.New("bad n")
		}
		e, err := b64(j.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return Key{}, errors.New("bad e")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 {
			return Key{}, fmt.Errorf("RSA key of %d bits; at least 2048 are required", pub.N.BitLen())
		}
		return Key{Alg: "RS256", Key: pub}, nil
	case "EC":
		if j.Crv != "P-256" {
			return Key{}, nil
		}
		x, err1 := b64(j.X)
		y, err2 := b64(j.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return Key{}, errors.New("bad P-256 point")
		}
		pt := append([]byte{4}, append(x, y...)...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
		if err != nil {
			return Key{}, err
		}
		return Key{Alg: "ES256", Key: pub}, nil
	case "OKP":
		if j.Crv != "Ed25519" {
			return Key{}, nil
		}
		x, err := b64(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return Key{}, errors.New("bad Ed25519 key")
		}
		return Key{Alg: "EdDSA", Key: ed25519.PublicKey(x)}, nil
	case "oct":
		k, err := b64(j.K)
		if err != nil || len(k) < 32 {
			return Key{}, errors.New("an HS256 secret needs at least 32 bytes")
		}
		return Key{Alg: "HS256", Key: k}, nil
	}
	return Key{}, nil
}
