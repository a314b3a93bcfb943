package proxy

import (
	"github.com/zerohop/zerohop/proxy/internal/apikey"
)

// apiKeyMemo is a fast-path connection's memory of the last API key an
// API key filter accepted on it. A keep-alive client sends the same key
// on every request; comparing it with the one remembered costs a few
// nanoseconds, where apikey.Set.Check hashes it with its salt (SHA-256)
// and looks the hash up, a third of what the bench suite's chain added
// to a hit.
//
// The answer is the one Check gives: the memo holds only a key accepted
// against the same key set (each filter parses its own; a rotated file is
// a new Set, so the first request after a rotation is checked again), and
// an unknown key is never remembered. The comparison is constant-time, so a
// connection that carries several callers' requests (a load balancer in
// front of an ingress listener) does not learn, by timing, how much of
// its key matches the previous caller's.
type apiKeyMemo struct {
	set      *apikey.Set
	key      []byte
	consumer string
}

// maxMemoKey bounds the key a connection remembers; longer keys are
// checked every time.
const maxMemoKey = 256

// apiKeyMemoer is a request view with a connection to remember an
// accepted key on (the fast path's; net/http's exchange is per request).
type apiKeyMemoer interface{ apiKeyMemo() *apiKeyMemo }

func (r *fastRequest) apiKeyMemo() *apiKeyMemo { return &r.c.keyMemo }

// check returns key's consumer in set, as set.Check does, from the memo
// when key is the one last accepted against set on this connection.
func (m *apiKeyMemo) check(set *apikey.Set, key string) (string, bool) {
	if m.set == set && len(key) == len(m.key) && sameKey(m.key, key) {
		return m.consumer, true
	}
	consumer, ok := set.Check(key)
	if ok && len(key) <= maxMemoKey {
		m.set, m.key, m.consumer = set, append(m.key[:0], key...), consumer
	}
	return consumer, ok
}

// sameKey reports whether a and b (of equal length) hold the same bytes,
// in time that depends on their length only, as subtle.ConstantTimeCompare
// (which would need b copied into a slice).
func sameKey(a []byte, b string) bool {
	var v byte
	for i := range len(b) {
		v |= a[i] ^ b[i]
	}
	return v == 0
}
