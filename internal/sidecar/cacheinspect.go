package sidecar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
	"github.com/zerohop/zerohop/store"
)

// The store's side of `zerohop inspect` and `zerohop keys`: the sidecar
// holds Pebble's lock, so the tools ask it (GET /cache/inspect and
// GET /cache/keys on the admin endpoint, behind its token) and merge the
// answer with what they read from the shared file themselves.

// Keys listing bounds: entries returned per request, and records read.
const (
	DefaultCacheKeysLimit = 1000
	MaxCacheKeysLimit     = 10_000
)

// StoredEntry is one entry of the store as the admin endpoint returns it.
type StoredEntry struct {
	URL    string `json:"url"`
	Method string `json:"method"`
	store.Inspected
}

// CacheStoreAnswer is the body of GET /cache/inspect and GET /cache/keys.
type CacheStoreAnswer struct {
	Store    bool          `json:"store"`    // a store is configured and open
	Entries  []StoredEntry `json:"entries"`  // in key order
	More     bool          `json:"more"`     // more entries matched than limit
	Complete bool          `json:"complete"` // every candidate record was read (false with more, or when the scan bound was reached)
	Visited  int           `json:"visited"`  // records read
	Limit    int           `json:"limit"`    // the limit applied
	Error    string        `json:"error,omitempty"`
}

// handleCacheInspect: GET /cache/inspect?url=U&method=GET: every stored
// variant (and the Vary marker) of one resource, with headers.
func (s *Sidecar) handleCacheInspect(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	scheme, host, target, err := invalidate.SplitURL(q.Get("url"))
	if err != nil {
		http.Error(w, "url: "+err.Error(), http.StatusBadRequest)
		return
	}
	method := q.Get("method")
	if method == "" {
		method = http.MethodGet
	}
	primary := shm.AppendKey(nil, method, scheme, host, target)
	s.answerStore(w, store.InspectQuery{Primary: primary, Headers: true, MaxVisit: MaxCacheKeysLimit + 1},
		MaxCacheKeysLimit, false)
}

// handleCacheKeys: GET /cache/keys?prefix=URL&tag=T&limit=N: stored
// responses (no Vary markers) whose URL starts with prefix and that carry
// tag, at most limit (default DefaultCacheKeysLimit, at most
// MaxCacheKeysLimit), reading at most store.DefaultInspectVisit records.
func (s *Sidecar) handleCacheKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultCacheKeysLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, fmt.Sprintf("limit: want a count, got %q", v), http.StatusBadRequest)
			return
		}
		if n > 0 {
			limit = min(n, MaxCacheKeysLimit)
		}
	}
	prefix, tag := q.Get("prefix"), q.Get("tag")
	iq := store.InspectQuery{Tag: tag}
	if prefix != "" {
		// A prefix naming a whole origin (a path follows the host) reads
		// that origin's records only, and compares with the host as keys
		// hold it (lower case, no default port).
		if sch, h, t, err := invalidate.SplitPrefix(prefix); err == nil && strings.Contains(strings.SplitN(prefix, "://", 2)[1], "/") {
			iq.Scheme, iq.Host = sch, h
			k, _ := shm.SplitKey(shm.AppendKey(nil, "GET", sch, h, t))
			prefix = string(k.Scheme) + "://" + string(k.Host) + t
		}
		iq.Match = func(key []byte) bool {
			p, ok := shm.SplitKey(key)
			return ok && hasURLPrefix(p, prefix)
		}
	}
	s.answerStore(w, iq, limit, true)
}

// hasURLPrefix reports whether scheme://host+target of p starts with prefix,
// without building the URL.
func hasURLPrefix(p shm.KeyParts, prefix string) bool {
	for _, part := range [][]byte{p.Scheme, []byte("://"), p.Host, p.Target} {
		if len(prefix) <= len(part) {
			return string(part[:len(prefix)]) == prefix
		}
		if string(part) != prefix[:len(part)] {
			return false
		}
		prefix = prefix[len(part):]
	}
	return prefix == ""
}

// answerStore runs q on the store and writes at most limit entries (Vary
// markers left out with keys).
func (s *Sidecar) answerStore(w http.ResponseWriter, q store.InspectQuery, limit int, keys bool) {
	ans := CacheStoreAnswer{Entries: []StoredEntry{}, Limit: limit}
	if s.store == nil {
		ans.Error = "no store configured (store.path), or it could not be opened"
		writeAnswer(w, http.StatusOK, &ans)
		return
	}
	ans.Store = true
	res, err := s.store.Inspect(q, func(in *store.Inspected) bool {
		if keys && in.Flags&shm.FlagVaryIndex != 0 {
			return true
		}
		if len(ans.Entries) == limit {
			ans.More = true
			return false
		}
		p, _ := shm.SplitKey(in.Key)
		ans.Entries = append(ans.Entries, StoredEntry{URL: string(p.Scheme) + "://" + string(p.Host) + string(p.Target),
			Method: string(p.Method), Inspected: *in})
		return true
	})
	ans.Visited, ans.Complete = res.Visited, res.Complete
	status := http.StatusOK
	if err != nil {
		ans.Error, status = err.Error(), http.StatusServiceUnavailable
	}
	writeAnswer(w, status, &ans)
}

func writeAnswer(w http.ResponseWriter, status int, ans *CacheStoreAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(ans)
}
