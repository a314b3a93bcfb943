// Package shmtest is the deterministic content generator and checker of the
// shm torture and crash tests. Every field of the response stored for (key
// id, version) is a pure function of (seed, id, version), and the version
// travels inside the entry (an X-Ver header, the body prefix and the ETag), so
// a reader in another process can regenerate the exact bytes it must have
// received for any hit, without talking to the writer.
package shmtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/zerohop/zerohop/shm"
)

// Groups is the number of surrogate-key groups: key id i carries tag
// GroupTag(i % Groups), so a PurgeTag hits about 1/Groups of the keys.
const Groups = 16

// MaxBody is the largest body the generator produces.
const MaxBody = 20 << 10

// Gen generates keys and responses. The zero Seed is a valid seed.
type Gen struct {
	Seed uint64
}

// GroupTag is the surrogate key of group g.
func GroupTag(g int) string { return "g" + strconv.Itoa(g) }

// mix is the splitmix64 finaliser: a cheap, well-spread 64-bit hash.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func (g *Gen) keyHash(id int) uint64 { return mix(g.Seed ^ mix(uint64(id)+1)) }

func (g *Gen) verHash(id int, ver uint64) uint64 {
	return mix(g.keyHash(id) ^ mix(ver^0x5bd1e995))
}

// Key appends the canonical key of id to dst. Targets vary in length (with a
// query of 0-99 bytes) so that keys are not all the same size.
func (g *Gen) Key(dst []byte, id int) []byte {
	h := g.keyHash(id)
	var tb [160]byte
	target := append(tb[:0], "/k/"...)
	target = strconv.AppendInt(target, int64(id), 10)
	if q := int(h % 100); q > 0 {
		target = append(target, "?q="...)
		for i := 0; i < q; i++ {
			target = append(target, 'a'+byte((h>>(i%58))%26))
		}
	}
	host := "torture.test"
	if h>>60 == 0 {
		host = "Other.Torture.test:8080"
	}
	return shm.AppendKey(dst, "GET", "http", host, string(target))
}

// Field is one response header field with its values, in stored order.
type Field struct {
	Name   string
	Values []string
}

// Spec is everything about the response for (ID, Ver) that is not time.
type Spec struct {
	ID           int
	Ver          uint64
	Status       int
	Flags        uint16
	InitialAge   uint32
	SWR, SIE     uint32
	TTL          time.Duration // ExpiresMs = StoredMs + TTL
	ETag         string
	LastModified string
	Vary         []string
	Tags         []string
	Fields       []Field // sorted by name, as the header block stores them
	BodyLen      int
	bodySeed     uint64
}

var (
	statuses     = [...]int{200, 200, 200, 200, 203, 204, 206, 301, 404, 410, 500}
	contentTypes = [...]string{"text/plain", "application/json", "text/html; charset=utf-8", "image/png", "application/octet-stream"}
)

// Spec returns the response for id at version ver.
func (g *Gen) Spec(id int, ver uint64) Spec {
	h := g.verHash(id, ver)
	r := func(i uint64) uint64 { return mix(h + i) }
	s := Spec{ID: id, Ver: ver, bodySeed: r(100)}
	s.Status = statuses[r(1)%uint64(len(statuses))]
	s.InitialAge = uint32(r(2) % 100)
	s.SWR = uint32(r(3) % 60)
	s.SIE = uint32(r(4) % 300)
	switch x := r(5) % 100; {
	case x < 5:
		s.BodyLen = 0
	case x < 60:
		s.BodyLen = 1 + int(r(6)%512)
	case x < 90:
		s.BodyLen = 513 + int(r(6)%3584)
	case x < 99:
		s.BodyLen = 4097 + int(r(6)%12288)
	default:
		s.BodyLen = 16385 + int(r(6)%(MaxBody-16384))
	}
	if f := r(7); f%32 == 0 {
		s.Flags |= shm.FlagNoCache // never served by Get
	} else if f%7 == 0 {
		s.Flags |= shm.FlagMustRevalidate
	}
	if s.BodyLen == 0 && r(8)%2 == 0 {
		s.Flags |= shm.FlagHeadersOnly
	}
	// A few short lives, so that Get also sees entries expire under it.
	if r(9)%8 == 0 {
		s.TTL = time.Duration(1+r(10)%400) * time.Millisecond
	} else {
		s.TTL = time.Hour
	}
	switch r(11) % 4 {
	case 0:
	case 1:
		s.ETag = "W/\"" + strconv.FormatUint(ver, 16) + "\""
	default:
		s.ETag = "\"" + strconv.Itoa(id) + "-" + strconv.FormatUint(ver, 16) + "\""
	}
	if r(12)%2 == 0 {
		s.LastModified = time.Unix(int64(1.7e9+r(13)%1e8), 0).UTC().Format(http.TimeFormat)
	}
	switch r(14) % 8 {
	case 0:
		s.Vary = []string{"accept-encoding"}
	case 1:
		s.Vary = []string{"accept", "accept-encoding"}
	}
	s.Tags = append(s.Tags, GroupTag(id%Groups))
	if r(15)%2 == 0 {
		s.Tags = append(s.Tags, "all")
	}
	if r(16)%3 == 0 {
		s.Tags = append(s.Tags, "p"+strconv.FormatUint(ver%4, 10))
	}

	s.Fields = append(s.Fields,
		Field{"Content-Type", []string{contentTypes[r(17)%uint64(len(contentTypes))]}},
		Field{"X-Key", []string{strconv.Itoa(id)}},
		Field{"X-Ver", []string{strconv.FormatUint(ver, 10)}},
	)
	if r(18)%2 == 0 {
		s.Fields = append(s.Fields, Field{"Cache-Control", []string{"public, max-age=" + strconv.FormatUint(r(19)%86400, 10)}})
	}
	for i := uint64(0); i < r(20)%5; i++ {
		f := Field{Name: "X-Extra-" + strconv.FormatUint(i, 10)}
		for j := uint64(0); j <= r(30+i)%2; j++ {
			f.Values = append(f.Values, string(printable(r(40+i*2+j), int(r(50+i*2+j)%120))))
		}
		s.Fields = append(s.Fields, f)
	}
	sort.Slice(s.Fields, func(i, j int) bool { return s.Fields[i].Name < s.Fields[j].Name })
	return s
}

func printable(seed uint64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		seed = mix(seed)
		b[i] = ' ' + byte(seed%95)
	}
	return b
}

// bodyPrefix starts every body, so a reader can tell key and version from
// the body alone.
func bodyPrefix(dst []byte, id int, ver uint64) []byte {
	dst = append(dst, "zerohop id="...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	dst = append(dst, " ver="...)
	dst = strconv.AppendUint(dst, ver, 10)
	return append(dst, '\n')
}

// AppendBody appends the body: the prefix, then pseudo-random bytes, cut
// to BodyLen (a short body holds only the start of the prefix).
func (s *Spec) AppendBody(dst []byte) []byte {
	start := len(dst)
	dst = bodyPrefix(dst, s.ID, s.Ver)
	x := s.bodySeed
	var w [8]byte
	for len(dst)-start < s.BodyLen {
		x = mix(x)
		binary.LittleEndian.PutUint64(w[:], x)
		dst = append(dst, w[:]...)
	}
	return dst[:start+s.BodyLen]
}

// Header returns the fields as an http.Header (names already canonical).
func (s *Spec) Header() http.Header {
	h := make(http.Header, len(s.Fields))
	for _, f := range s.Fields {
		h[f.Name] = append([]string(nil), f.Values...)
	}
	return h
}

// AppendHeaderBlock encodes the fields as docs/format.md specifies
// (u16 name_len, u32 value_len, name, value; sorted by name), written here
// independently of shm.AppendHeaderBlock so that the check covers it.
func (s *Spec) AppendHeaderBlock(dst []byte) []byte {
	for _, f := range s.Fields {
		for _, v := range f.Values {
			dst = binary.LittleEndian.AppendUint16(dst, uint16(len(f.Name)))
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v)))
			dst = append(dst, f.Name...)
			dst = append(dst, v...)
		}
	}
	return dst
}

func appendStrBlock(dst []byte, ss []string) []byte {
	for _, s := range ss {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// Item returns the item to Put for id at version ver, stored at nowMs.
func (g *Gen) Item(id int, ver uint64, nowMs int64) *shm.Item {
	s := g.Spec(id, ver)
	return &shm.Item{
		Key:          g.Key(nil, id),
		Status:       s.Status,
		Header:       s.Header(),
		Body:         s.AppendBody(nil),
		StoredMs:     nowMs,
		ExpiresMs:    nowMs + s.TTL.Milliseconds(),
		InitialAge:   s.InitialAge,
		SWR:          s.SWR,
		SIE:          s.SIE,
		Flags:        s.Flags,
		ETag:         s.ETag,
		LastModified: s.LastModified,
		Vary:         s.Vary,
		Tags:         s.Tags,
	}
}

// Version returns the version an entry claims in its X-Ver header.
func Version(e *shm.Entry) (uint64, bool) {
	v, ok := e.Header("X-Ver")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	return n, err == nil
}

// Checker verifies hits against the generator. It reuses its buffers, so
// use one per goroutine.
type Checker struct {
	Gen       *Gen
	key, want []byte
}

// NewChecker returns a checker for g.
func NewChecker(g *Gen) *Checker { return &Checker{Gen: g} }

// Check verifies that e is exactly the response generated for key id at the
// version e claims, and returns that version. A non-nil error is a wrong
// response: bytes that are not gen(id, version) for the key asked for.
func (c *Checker) Check(id int, e *shm.Entry) (uint64, error) {
	c.key = c.Gen.Key(c.key[:0], id)
	if !bytes.Equal(e.Key, c.key) {
		return 0, fmt.Errorf("key id %d: entry key %q; want %q", id, e.Key, c.key)
	}
	ver, ok := Version(e)
	if !ok {
		return 0, fmt.Errorf("key id %d: no valid X-Ver header in %q", id, e.Headers)
	}
	s := c.Gen.Spec(id, ver)
	mismatch := func(what string, got, want any) error {
		return fmt.Errorf("key id %d ver %d: %s %v; want %v", id, ver, what, got, want)
	}
	switch {
	case e.Status != s.Status:
		return ver, mismatch("status", e.Status, s.Status)
	case e.Flags != s.Flags:
		return ver, mismatch("flags", e.Flags, s.Flags)
	case e.InitialAge != s.InitialAge || e.SWR != s.SWR || e.SIE != s.SIE:
		return ver, mismatch("age/swr/sie", [3]uint32{e.InitialAge, e.SWR, e.SIE}, [3]uint32{s.InitialAge, s.SWR, s.SIE})
	case string(e.ETag) != s.ETag:
		return ver, mismatch("etag", string(e.ETag), s.ETag)
	case string(e.LastModified) != s.LastModified:
		return ver, mismatch("last-modified", string(e.LastModified), s.LastModified)
	}
	if c.want = appendStrBlock(c.want[:0], s.Vary); !bytes.Equal(e.Vary, c.want) {
		return ver, mismatch("vary block", e.Vary, c.want)
	}
	if c.want = appendStrBlock(c.want[:0], s.Tags); !bytes.Equal(e.Tags, c.want) {
		return ver, mismatch("tags block", e.Tags, c.want)
	}
	if c.want = s.AppendHeaderBlock(c.want[:0]); !bytes.Equal(e.Headers, c.want) {
		return ver, mismatch("header block", e.Headers, c.want)
	}
	if c.want = s.AppendBody(c.want[:0]); !bytes.Equal(e.Body, c.want) {
		i := 0
		for i < len(e.Body) && i < len(c.want) && e.Body[i] == c.want[i] {
			i++
		}
		return ver, fmt.Errorf("key id %d ver %d: body of %d bytes differs from the generated %d bytes at byte %d",
			id, ver, len(e.Body), len(c.want), i)
	}
	if e.ExpiresMs > e.StoredMs+s.TTL.Milliseconds() {
		return ver, mismatch("expiry after stored time", e.ExpiresMs-e.StoredMs, s.TTL.Milliseconds())
	}
	return ver, nil
}
