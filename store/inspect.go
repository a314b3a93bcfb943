package store

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/cockroachdb/pebble/v2"
	"github.com/zerohop/zerohop/shm"
)

// Inspection: read-only scans of the records for the operator's tools
// (zerohop inspect and keys, through the sidecar's admin endpoint, since
// the sidecar holds Pebble's lock). A scan never writes, never counts a
// use, never queues a removal, and reads at most InspectQuery.MaxVisit
// keys, so a listing cannot walk a store of millions of entries.

// Inspected is one entry as the store holds it. Its slices are its own.
type Inspected struct {
	Key        []byte      `json:"key"` // the cache key (shm.SplitKey parses it)
	Status     int         `json:"status"`
	Flags      uint16      `json:"flags"` // shm flags (shm.FlagVaryIndex: a Vary marker)
	StoredMs   int64       `json:"stored_ms"`
	ExpiresMs  int64       `json:"expires_ms"` // earlier than stored when an invalidation not yet written softened it
	InitialAge uint32      `json:"initial_age_seconds"`
	SWR        uint32      `json:"stale_while_revalidate_seconds,omitempty"`
	SIE        uint32      `json:"stale_if_error_seconds,omitempty"`
	Vary       []string    `json:"vary_on,omitempty"` // a marker's Vary field names
	Tags       []string    `json:"tags,omitempty"`
	Header     http.Header `json:"headers,omitempty"` // only with InspectQuery.Headers
	BodyBytes  int         `json:"body_bytes"`        // decoded
	RecordSize int         `json:"record_bytes"`      // the record's bytes on disk (body compressed or not)
	HotSize    int         `json:"entry_bytes"`       // its size as a shared-memory entry
	DeadlineMs int64       `json:"deadline_ms"`       // unix ms after which the store never serves it
}

// InspectQuery selects the entries of a scan. The zero value scans every
// record, up to DefaultInspectVisit.
type InspectQuery struct {
	// Primary: only keys starting with it, the key of one resource
	// (shm.AppendKey): every Vary variant and the marker.
	Primary []byte
	// Tag: only entries carrying this surrogate key (read through the tag
	// index: cost proportional to the tagged entries).
	Tag string
	// Scheme and Host: only keys of that origin (a skip scan per method).
	// Ignored with Primary or Tag.
	Scheme, Host string
	// Match, if set, is asked about each key first; false skips it.
	Match func(key []byte) bool
	// Headers asks for each entry's response header fields.
	Headers bool
	// MaxVisit bounds the keys read (default DefaultInspectVisit, at most
	// MaxInspectVisit).
	MaxVisit int
}

// Scan bounds.
const (
	DefaultInspectVisit = 100_000
	MaxInspectVisit     = 1_000_000
)

// InspectResult says how a scan ended.
type InspectResult struct {
	Visited  int  // keys read
	Complete bool // every candidate key was read (not stopped by MaxVisit or f)
}

// Inspect calls f, in key order, for each live entry q selects; f returns
// false to stop. Entries covered by an invalidation not yet written are
// left out (a soft one shortens ExpiresMs), as Get would; entries past
// their deadline are included (DeadlineMs says so) until the writer
// removes them. Corrupt records are skipped.
func (s *Store) Inspect(q InspectQuery, f func(*Inspected) bool) (InspectResult, error) {
	var res InspectResult
	lim := q.MaxVisit
	if lim <= 0 {
		lim = DefaultInspectVisit
	}
	lim = min(lim, MaxInspectVisit)
	s.gate.RLock()
	if !s.usable() {
		s.gate.RUnlock()
		if err := s.Err(); err != nil {
			return res, err
		}
		return res, ErrClosed
	}
	s.readers.Add(1) // Close waits for the iterators to go
	s.gate.RUnlock()
	defer s.readers.Done()

	sc := inspectScan{s: s, q: &q, max: lim, f: f}
	var err error
	switch {
	case len(q.Primary) > 0:
		lo := appendRecKey(nil, q.Primary)
		err = sc.records(lo, prefixEnd(lo))
	case q.Tag != "":
		err = sc.tagged()
	case q.Host != "":
		err = sc.origin()
	default:
		err = sc.records([]byte{pRec}, []byte{pRec + 1})
	}
	res.Visited, res.Complete = sc.visited, err == nil && !sc.stopped
	if errors.Is(err, errStop) {
		err = nil
	}
	return res, err
}

var errStop = errors.New("store: inspect: stopped")

type inspectScan struct {
	s       *Store
	q       *InspectQuery
	max     int
	f       func(*Inspected) bool
	visited int
	stopped bool
}

// visit reads one record value under key; it returns errStop when the scan
// must end.
func (sc *inspectScan) visit(key, rec []byte) error {
	if sc.visited >= sc.max || sc.s.closed.Load() {
		sc.stopped = true
		return errStop
	}
	sc.visited++
	if sc.q.Match != nil && !sc.q.Match(key) {
		return nil
	}
	v, err := parseRecord(key, rec)
	if err != nil {
		return nil
	}
	s := sc.s
	s.gate.RLock()
	lvl := s.pendF.match(key, v.tags)
	softAt := s.pendF.softAt
	s.gate.RUnlock()
	if lvl == 2 {
		return nil
	}
	if lvl == 1 {
		v.expiresMs = min(v.expiresMs, softAt)
	}
	in := &Inspected{
		Key: append([]byte(nil), key...), Status: v.status, Flags: v.flags, StoredMs: v.storedMs,
		ExpiresMs: v.expiresMs, InitialAge: v.initialAge, SWR: v.swr, SIE: v.sie,
		BodyBytes: int(v.bodyLen), RecordSize: len(rec), HotSize: int(v.hotSize(len(key))),
		DeadlineMs: v.deadline(s.graceMs),
	}
	for it := newStrIter(v.vary); it.next(); {
		in.Vary = append(in.Vary, string(it.cur))
	}
	for it := newStrIter(v.tags); it.next(); {
		in.Tags = append(in.Tags, string(it.cur))
	}
	if sc.q.Headers {
		in.Header = http.Header{}
		for h := shm.NewHeaderIter(v.hdrs); h.Next(); {
			n := http.CanonicalHeaderKey(string(h.Name()))
			in.Header[n] = append(in.Header[n], string(h.Value()))
		}
	}
	if !sc.f(in) {
		sc.stopped = true
		return errStop
	}
	return nil
}

// records scans the record keys in [lo, hi).
func (sc *inspectScan) records(lo, hi []byte) error {
	it, err := sc.s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := sc.visit(it.Key()[1:], it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// tagged reads the records the tag index names.
func (sc *inspectScan) tagged() error {
	p := appendTagPrefix(nil, sc.q.Tag)
	it, err := sc.s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	var rk []byte
	for ok := it.First(); ok; ok = it.Next() {
		key := it.Key()[len(p):]
		rk = appendRecKey(rk[:0], key)
		val, closer, err := sc.s.db.Get(rk)
		if errors.Is(err, pebble.ErrNotFound) {
			if sc.visited >= sc.max {
				sc.stopped = true
				return errStop
			}
			sc.visited++ // left behind by a damaged entry
			continue
		}
		if err != nil {
			return err
		}
		err = sc.visit(key, val)
		closer.Close()
		if err != nil {
			return err
		}
	}
	return it.Error()
}

// origin skip-scans the records of one scheme and host: for each method
// present, the keys method ‖ scheme ‖ host (as purgePrefix does).
func (sc *inspectScan) origin() error {
	scheme, host := hostPart(sc.q.Scheme, sc.q.Host)
	var sh []byte
	sh = appendStr16(sh, string(scheme))
	sh = appendStr16(sh, string(host))
	it, err := sc.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pRec}, UpperBound: []byte{pRec + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	var hp []byte
	next := []byte{pRec}
	for it.SeekGE(next) {
		k := it.Key()[1:]
		if len(k) < 2 || len(k) < 2+int(le.Uint16(k)) {
			next = prefixEnd(it.Key())
		} else {
			mlen := 2 + int(le.Uint16(k))
			hp = append(append(append(hp[:0], pRec), k[:mlen]...), sh...)
			next = prefixEnd(append([]byte{pRec}, k[:mlen]...))
			for ok := it.SeekGE(hp); ok && bytes.HasPrefix(it.Key(), hp); ok = it.Next() {
				if err := sc.visit(it.Key()[1:], it.Value()); err != nil {
					return err
				}
			}
		}
		if next == nil {
			break
		}
	}
	return it.Error()
}
