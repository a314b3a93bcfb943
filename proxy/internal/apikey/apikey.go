// Package apikey checks API keys against a file of salted SHA-256
// hashes. A line is
//
//	consumer:salt:hex(sha256(salt || key))
//
// (blank lines and lines starting with '#' are skipped). A key is checked
// by hashing it once per distinct salt in the file and looking the hash
// up, so a file with one salt (the norm: a per-deployment salt, see
// docs/auth.md) costs one SHA-256 of a few dozen bytes per request.
//
// Why not bcrypt or argon2: they make guessing a low-entropy password
// slow, at tens of milliseconds per check, which a gateway cannot pay per
// request. An API key is random (128 bits or more); nobody can enumerate
// it, fast hash or not, and the salt keeps precomputed tables of one
// deployment useless for another. The hash means a leaked key file does
// not leak the keys.
package apikey

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrFile marks a key file that cannot be used.
var ErrFile = errors.New("apikey: bad key file")

// Set is an immutable set of hashed keys.
type Set struct {
	groups []group
	n      int
}

type group struct {
	salt   string
	hashes map[[sha256.Size]byte]string // hash -> consumer
}

// maxStack is the longest salt+key hashed without allocating.
const maxStack = 512

// Parse reads a key file. Any bad line refuses the whole file (with its
// line number, never its content): a half-read key file would lock out
// the callers of the lines lost.
func Parse(data []byte) (*Set, error) {
	s := &Set{}
	bySalt := map[string]int{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		parts := strings.Split(string(line), ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%w: line %d: want consumer:salt:sha256-hex", ErrFile, i+1)
		}
		consumer, salt, hx := parts[0], parts[1], parts[2]
		if consumer == "" || len(consumer) > 256 {
			return nil, fmt.Errorf("%w: line %d: consumer name is empty or too long", ErrFile, i+1)
		}
		if len(salt) > 128 {
			return nil, fmt.Errorf("%w: line %d: salt longer than 128 bytes", ErrFile, i+1)
		}
		var h [sha256.Size]byte
		if len(hx) != 2*sha256.Size { // checked first: a longer value would overrun h
			return nil, fmt.Errorf("%w: line %d: the hash is not 64 hex digits", ErrFile, i+1)
		}
		if _, err := hex.Decode(h[:], []byte(hx)); err != nil {
			return nil, fmt.Errorf("%w: line %d: the hash is not 64 hex digits", ErrFile, i+1)
		}
		g, ok := bySalt[salt]
		if !ok {
			g = len(s.groups)
			bySalt[salt] = g
			s.groups = append(s.groups, group{salt: salt, hashes: map[[sha256.Size]byte]string{}})
		}
		if prev, dup := s.groups[g].hashes[h]; dup {
			return nil, fmt.Errorf("%w: line %d: the same key is listed for %q already", ErrFile, i+1, prev)
		}
		s.groups[g].hashes[h] = consumer
		s.n++
	}
	return s, nil
}

// Len is the number of keys.
func (s *Set) Len() int { return s.n }

// Check returns the consumer of key, or false. It allocates nothing for
// keys up to a few hundred bytes.
func (s *Set) Check(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	for i := range s.groups {
		g := &s.groups[i]
		sum := hash(g.salt, key)
		if c, ok := g.hashes[sum]; ok {
			return c, true
		}
	}
	return "", false
}

func hash(salt, key string) [sha256.Size]byte {
	if len(salt)+len(key) <= maxStack {
		var buf [maxStack]byte
		n := copy(buf[:], salt)
		n += copy(buf[n:], key)
		return sha256.Sum256(buf[:n])
	}
	h := sha256.New()
	h.Write([]byte(salt))
	h.Write([]byte(key))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Line returns the key file line for consumer's key with salt.
func Line(consumer, salt, key string) string {
	sum := hash(salt, key)
	return consumer + ":" + salt + ":" + hex.EncodeToString(sum[:])
}
