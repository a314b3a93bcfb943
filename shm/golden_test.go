package shm_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/bits"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/zerohop/zerohop/shm"
)

// The golden vectors are what the Python and Node clients are tested
// against: testdata/golden/cache.shm, written by the real writer from the
// fixed inputs below, and testdata/golden/expected.json, the lookups a
// reader must answer from it. `cd shm && go test -run Golden -update .` rewrites
// both; without -update the test checks that
//
//   - the checked-in file answers every lookup of expected.json, through
//     shm.Reader and through specReader (an independent reader written from
//     docs/format.md alone);
//   - the writer given the same inputs today writes the same bytes, apart
//     from instance_id, created_ms, layout_sum, heartbeat and writer_start;
//   - expected.json is what the inputs below produce (key encoding drift).

var update = flag.Bool("update", false, "rewrite testdata/golden (and the fuzz seed corpus) from the writer")

const (
	goldenDir        = "testdata/golden"
	goldenSeed       = 0xc0ffee0123456789
	goldenInstanceID = 0x0123456789abcdef // fixed after the writer closes, for a reproducible file
	goldenRegion     = 64 << 10
	goldenEntries    = 32 // 8 buckets
	goldenSize       = shm.HeaderSize + 8*shm.BucketSize + 4*goldenRegion
)

var (
	goldenCreated = time.Date(2099, 12, 31, 23, 59, 0, 0, time.UTC) // Options.Now
	goldenStored  = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	goldenExpires = goldenStored + 24*3600*1000 // 2100-01-02
	goldenNow     = goldenStored + 1000         // lookups are made at this time
	pastStored    = time.Date(1999, 12, 31, 23, 0, 0, 0, time.UTC).UnixMilli()
	pastExpires   = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
)

// goldenReq is a request, as a client sees it.
type goldenReq struct {
	method, scheme, host, target string
	headers                      [][2]string // request field lines, in order
}

// values returns the field lines of name (case-insensitive), as
// http.Header.Values would.
func (r goldenReq) values(name string) []string {
	var v []string
	for _, h := range r.headers {
		if strings.EqualFold(h[0], name) {
			v = append(v, h[1])
		}
	}
	return v
}

// primaryKey is the key of r's primary entry: HEAD is looked up as GET.
func (r goldenReq) primaryKey() []byte {
	m := r.method
	if m == "HEAD" {
		m = "GET"
	}
	return shm.AppendKey(nil, m, r.scheme, r.host, r.target)
}

// varyKey is the secondary key of r for the names of a vary block.
func (r goldenReq) varyKey(block []byte) []byte {
	return shm.AppendVaryFromHeader(r.primaryKey(), block, r.values)
}

func strBlock(ss []string) []byte {
	var b []byte
	for _, s := range ss {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return b
}

// goldenItem is one stored response; variant items are keyed by the
// secondary key built from their Vary names and req's headers.
type goldenItem struct {
	req     goldenReq
	variant bool
	item    shm.Item
}

func (g *goldenItem) key() []byte {
	if g.variant {
		return g.req.varyKey(strBlock(g.item.Vary))
	}
	return g.req.primaryKey()
}

func get(target string) goldenReq { return goldenReq{"GET", "http", "example.com", target, nil} }
func gitem(status int, h http.Header, body string) shm.Item {
	return shm.Item{Status: status, Header: h, Body: []byte(body), StoredMs: goldenStored, ExpiresMs: goldenExpires}
}

func binaryBody() string {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i) ^ byte(i>>8)*0xff
	}
	return string(b)
}

var varyNames = []string{"accept-encoding", "accept-language"}

// goldenItems are the responses written, by id.
var goldenItems = map[string]*goldenItem{
	"plain": {req: get("/"), item: func() shm.Item {
		it := gitem(200, http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Cache-Control": {"max-age=86400"}}, "Hello, zerohop!\n")
		it.ETag = `"a1"`
		return it
	}()},
	"query": {req: goldenReq{"GET", "https", "Example.COM:443", "/search?q=caf%C3%A9&b=2&a=1", nil}, item: func() shm.Item {
		it := gitem(200, http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"public, max-age=86400"}}, `{"results":[]}`)
		it.Tags = []string{"search", "product:42"}
		it.InitialAge = 5
		return it
	}()},
	"repeated-headers": {req: get("/multi"), item: gitem(200, http.Header{
		"Link":         {"</style.css>; rel=preload", "</app.js>; rel=preload"},
		"X-Multi":      {"one", "two", "three"},
		"Content-Type": {"text/html"},
		"X-Empty":      {""},
	}, "<p>multi</p>")},
	"empty-body": {req: get("/empty"), item: gitem(204, http.Header{"X-Reason": {"no content"}}, "")},
	"binary": {req: goldenReq{"GET", "http", "static.example.com:8080", "/blob.bin", nil},
		item: gitem(200, http.Header{"Content-Type": {"application/octet-stream"}}, binaryBody())},
	"validators": {req: goldenReq{"GET", "https", "example.com", "/validators", nil}, item: func() shm.Item {
		it := gitem(200, http.Header{"Content-Type": {"text/plain"}}, "validated")
		it.ETag = `W/"v2"`
		it.LastModified = "Fri, 31 Dec 2099 23:00:00 GMT"
		it.SWR, it.SIE, it.InitialAge = 60, 300, 30
		it.Flags = shm.FlagMustRevalidate
		it.Tags = []string{"validators"}
		return it
	}()},
	"no-cache": {req: get("/no-cache"), item: func() shm.Item {
		it := gitem(200, http.Header{"Cache-Control": {"no-cache"}}, "always revalidate")
		it.Flags = shm.FlagNoCache
		it.ETag = `"nc"`
		return it
	}()},
	"head-only": {req: get("/head-only"), item: func() shm.Item {
		it := gitem(200, http.Header{"Content-Length": {"1234"}}, "")
		it.Flags = shm.FlagHeadersOnly
		return it
	}()},
	"raw-target": {req: get("/caf\xc3\xa9/\xc3\xbc?q=\xc3\xbc&empty="), item: gitem(200, http.Header{"Content-Type": {"text/plain"}}, "raw UTF-8 target")},
	"vary-marker": {req: goldenReq{"GET", "https", "api.example.com", "/v1/items", nil}, item: func() shm.Item {
		it := gitem(200, http.Header{"Vary": {"Accept-Encoding, Accept-Language"}}, "")
		it.Flags = shm.FlagVaryIndex
		it.Vary = varyNames
		return it
	}()},
	"variant-gzip": {variant: true,
		req: goldenReq{"GET", "https", "api.example.com", "/v1/items", [][2]string{{"Accept-Encoding", "gzip, br"}}},
		item: func() shm.Item {
			it := gitem(200, http.Header{"Content-Encoding": {"gzip"}, "Vary": {"Accept-Encoding, Accept-Language"}}, "gzip variant")
			it.Vary = varyNames
			it.Tags = []string{shm.VariantTag(shm.AppendKey(nil, "GET", "https", "api.example.com", "/v1/items")), "items"}
			return it
		}()},
	"variant-identity": {variant: true,
		req: goldenReq{"GET", "https", "api.example.com", "/v1/items", [][2]string{{"Accept-Encoding", ""}, {"Accept-Language", "en-US, fr;q=0.5"}}},
		item: func() shm.Item {
			it := gitem(200, http.Header{"Content-Language": {"en-US"}, "Vary": {"Accept-Encoding, Accept-Language"}}, "identity variant, en-US")
			it.Vary = varyNames
			it.Tags = []string{shm.VariantTag(shm.AppendKey(nil, "GET", "https", "api.example.com", "/v1/items"))}
			return it
		}()},
	"soft-purged": {req: get("/soft"), item: func() shm.Item {
		it := gitem(200, http.Header{"Content-Type": {"text/plain"}}, "soft purged")
		it.Tags = []string{"soft"}
		it.SWR = 120
		return it
	}()},
	"deleted": {req: get("/deleted"), item: gitem(200, nil, "deleted")},
	"replaced-v1": {req: get("/replaced"), item: func() shm.Item {
		it := gitem(200, http.Header{"X-Version": {"1"}}, "first version")
		it.ETag, it.Tags = `"r1"`, []string{"old-tag"}
		return it
	}()},
	"replaced-v2": {req: get("/replaced"), item: func() shm.Item {
		it := gitem(200, http.Header{"X-Version": {"2"}, "Content-Type": {"text/plain"}}, "second version")
		it.ETag, it.Tags = `"r2"`, []string{"new-tag"}
		return it
	}()},
	"expired": {req: get("/expired"), item: func() shm.Item {
		it := gitem(200, http.Header{"Content-Type": {"text/plain"}}, "expired in 2000")
		it.StoredMs, it.ExpiresMs = pastStored, pastExpires
		return it
	}()},
	// FlagAuthShared: the only kind of entry a request carrying
	// Authorization may be answered with (RFC 9111 §3.5).
	"auth-shared": {req: get("/auth-shared"), item: func() shm.Item {
		it := gitem(200, http.Header{"Cache-Control": {"public, max-age=86400"}, "Content-Type": {"text/plain"}}, "shareable with Authorization")
		it.Flags = shm.FlagAuthShared
		return it
	}()},
	// Vary values with quoted strings: commas and spaces inside quotes are
	// data, and a backslash escapes the next byte (RFC 9110 §5.6.4).
	"quoted-marker": {req: goldenReq{"GET", "http", "example.com", "/quoted", nil}, item: func() shm.Item {
		it := gitem(200, http.Header{"Vary": {"Prefer"}}, "")
		it.Flags = shm.FlagVaryIndex
		it.Vary = []string{"prefer"}
		return it
	}()},
	"quoted-variant": {variant: true,
		req:  goldenReq{"GET", "http", "example.com", "/quoted", [][2]string{{"Prefer", `"a , b", c`}}},
		item: variantItem("/quoted", "http", "example.com", []string{"prefer"}, "quoted variant")},
	"quoted-escape": {variant: true,
		req:  goldenReq{"GET", "http", "example.com", "/quoted", [][2]string{{"Prefer", `"x\", y"`}}},
		item: variantItem("/quoted", "http", "example.com", []string{"prefer"}, "escaped quote variant")},
	// A Vary marker that is no longer fresh above a variant that is: a
	// client serves a variant only through a fresh marker.
	"stale-marker": {req: get("/stale-marker"), item: func() shm.Item {
		it := gitem(200, http.Header{"Vary": {"Accept-Encoding"}}, "")
		it.StoredMs, it.ExpiresMs = pastStored, pastExpires
		it.Flags = shm.FlagVaryIndex
		it.Vary = []string{"accept-encoding"}
		return it
	}()},
	"stale-marker-gzip": {variant: true,
		req:  goldenReq{"GET", "http", "example.com", "/stale-marker", [][2]string{{"Accept-Encoding", "gzip"}}},
		item: variantItem("/stale-marker", "http", "example.com", []string{"accept-encoding"}, "variant under a stale marker")},
}

// variantItem is a fresh variant of the response at target, linked to its
// URL by the variant tag.
func variantItem(target, scheme, host string, vary []string, body string) shm.Item {
	it := gitem(200, http.Header{"Content-Type": {"text/plain"}}, body)
	it.Vary = vary
	it.Tags = []string{shm.VariantTag(shm.AppendKey(nil, "GET", scheme, host, target))}
	return it
}

// goldenOps is the order in which the file is written.
var goldenOps = []struct{ op, id string }{
	{"put", "plain"}, {"put", "query"}, {"put", "repeated-headers"}, {"put", "empty-body"},
	{"put", "binary"}, {"put", "validators"}, {"put", "no-cache"}, {"put", "head-only"},
	{"put", "raw-target"}, {"put", "replaced-v1"}, {"put", "deleted"}, {"put", "vary-marker"},
	{"put", "variant-gzip"}, {"put", "variant-identity"}, {"put", "soft-purged"}, {"put", "expired"},
	{"delete", "deleted"}, {"mark-stale", "soft-purged"}, {"put", "replaced-v2"},
	{"put", "auth-shared"}, {"put", "quoted-marker"}, {"put", "quoted-variant"}, {"put", "quoted-escape"},
	{"put", "stale-marker"}, {"put", "stale-marker-gzip"},
}

// Lookup outcomes: "hit" is a fresh hit at now_ms; "stale" is an entry
// that verifies but is not fresh (Get misses, GetStale returns it); "miss"
// is no entry at all.
var goldenLookups = []struct {
	name, note string
	req        goldenReq
	viaVary    bool // look the primary key up, then the secondary key from its vary block
	expect, id string
}{
	{"plain", "", get("/"), false, "hit", "plain"},
	{"plain, default port and upper case", "scheme and host are lower-cased, :80 is dropped for http",
		goldenReq{"GET", "HTTP", "EXAMPLE.com:80", "/", nil}, false, "hit", "plain"},
	{"plain, HEAD", "HEAD is looked up as GET", goldenReq{"HEAD", "http", "example.com", "/", nil}, false, "hit", "plain"},
	{"plain, other scheme", "", goldenReq{"GET", "https", "example.com", "/", nil}, false, "miss", ""},
	{"plain, lower-case method", "the method is case-sensitive", goldenReq{"get", "http", "example.com", "/", nil}, false, "miss", ""},
	{"query", ":443 is dropped for https", goldenReq{"GET", "https", "example.com:443", "/search?q=caf%C3%A9&b=2&a=1", nil}, false, "hit", "query"},
	{"query, reordered", "the target is kept byte for byte", goldenReq{"GET", "https", "example.com", "/search?a=1&b=2&q=caf%C3%A9", nil}, false, "miss", ""},
	{"query, percent case", "", goldenReq{"GET", "https", "example.com", "/search?q=caf%c3%a9&b=2&a=1", nil}, false, "miss", ""},
	{"repeated headers", "", get("/multi"), false, "hit", "repeated-headers"},
	{"empty body", "", get("/empty"), false, "hit", "empty-body"},
	{"binary body", "", goldenReq{"GET", "http", "static.example.com:8080", "/blob.bin", nil}, false, "hit", "binary"},
	{"binary body, port dropped", "only the scheme's default port is dropped", goldenReq{"GET", "http", "static.example.com", "/blob.bin", nil}, false, "miss", ""},
	{"validators", "", goldenReq{"GET", "https", "example.com", "/validators", nil}, false, "hit", "validators"},
	{"no-cache", "FlagNoCache: never fresh", get("/no-cache"), false, "stale", "no-cache"},
	{"headers only", "", get("/head-only"), false, "hit", "head-only"},
	{"raw target", "", get("/caf\xc3\xa9/\xc3\xbc?q=\xc3\xbc&empty="), false, "hit", "raw-target"},
	{"vary marker", "the primary key of a varying response holds a FlagVaryIndex entry naming the request headers",
		goldenReq{"GET", "https", "api.example.com", "/v1/items", nil}, false, "hit", "vary-marker"},
	{"variant gzip", "accept-language absent", goldenReq{"GET", "https", "api.example.com", "/v1/items",
		[][2]string{{"Accept-Encoding", " gzip ,br "}}}, true, "hit", "variant-gzip"},
	{"variant gzip, two field lines", "field lines are combined with commas",
		goldenReq{"GET", "https", "api.example.com", "/v1/items", [][2]string{{"accept-encoding", "gzip"}, {"ACCEPT-ENCODING", "br"}}}, true, "hit", "variant-gzip"},
	{"variant identity", "accept-encoding present but empty", goldenReq{"GET", "https", "api.example.com", "/v1/items",
		[][2]string{{"Accept-Language", "en-US,fr;q=0.5"}, {"Accept-Encoding", ""}}}, true, "hit", "variant-identity"},
	{"variant, no headers", "both absent: a variant never stored",
		goldenReq{"GET", "https", "api.example.com", "/v1/items", nil}, true, "miss", ""},
	{"variant, empty vs absent", "accept-language present but empty is not the absent variant",
		goldenReq{"GET", "https", "api.example.com", "/v1/items", [][2]string{{"Accept-Encoding", "gzip, br"}, {"Accept-Language", ""}}}, true, "miss", ""},
	{"variant, member order", "list members are not reordered",
		goldenReq{"GET", "https", "api.example.com", "/v1/items", [][2]string{{"Accept-Encoding", "br, gzip"}}}, true, "miss", ""},
	{"soft-purged", "MarkStale set the slot's fresh-until to the purge time: stale from then on", get("/soft"), false, "stale", "soft-purged"},
	{"deleted", "", get("/deleted"), false, "miss", ""},
	{"replaced", "the second Put replaced the first", get("/replaced"), false, "hit", "replaced-v2"},
	{"expired", "", get("/expired"), false, "stale", "expired"},
	{"never stored", "", get("/nothing"), false, "miss", ""},
	{"auth-shared", "FlagAuthShared (16): the response had public, s-maxage or must-revalidate", get("/auth-shared"), false, "hit", "auth-shared"},
	{"auth-shared, with Authorization", "a request carrying Authorization may be answered only with a FlagAuthShared entry",
		withHeaders(get("/auth-shared"), "Authorization", "Bearer t0ken"), false, "hit", "auth-shared"},
	{"plain, with Authorization", "the entry verifies, but without FlagAuthShared a client must not answer a request carrying Authorization with it: serve is forward",
		withHeaders(get("/"), "Authorization", "Basic dXNlcjpwdw=="), false, "hit", "plain"},
	{"headers only, HEAD", "a headers-only entry answers a HEAD, never a GET", goldenReq{"HEAD", "http", "example.com", "/head-only", nil}, false, "hit", "head-only"},
	{"quoted vary marker", "", get("/quoted"), false, "hit", "quoted-marker"},
	{"quoted vary", "the comma and spaces inside the quoted string are data: value \"a , b\",c",
		withHeaders(get("/quoted"), "Prefer", `"a , b", c`), true, "hit", "quoted-variant"},
	{"quoted vary, whitespace outside quotes", "whitespace around list commas is dropped, inside quotes it is kept",
		withHeaders(get("/quoted"), "Prefer", ` "a , b"  ,c `), true, "hit", "quoted-variant"},
	{"quoted vary, whitespace inside quotes differs", "a splitter that ignores quotes makes \"a,b\",c of both this and the stored value",
		withHeaders(get("/quoted"), "Prefer", `"a, b", c`), true, "miss", ""},
	{"quoted vary, escaped quote", "a backslash escapes the next byte inside a quoted string: one member",
		withHeaders(get("/quoted"), "Prefer", `"x\", y"`), true, "hit", "quoted-escape"},
	{"stale vary marker", "the marker itself is stale", get("/stale-marker"), false, "stale", "stale-marker"},
	{"stale vary marker, variant", "the variant is fresh, but a client follows only a fresh marker: serve is forward",
		withHeaders(get("/stale-marker"), "Accept-Encoding", "gzip"), true, "hit", "stale-marker-gzip"},
}

// hasAuthorization is the Go transport's test: a non-empty first
// Authorization field line (req.Header.Get("Authorization") != "").
func hasAuthorization(r goldenReq) bool {
	v := r.values("Authorization")
	return len(v) > 0 && v[0] != ""
}

func withHeaders(r goldenReq, kv ...string) goldenReq {
	for i := 0; i+1 < len(kv); i += 2 {
		r.headers = append(r.headers, [2]string{kv[i], kv[i+1]})
	}
	return r
}

func goldenOptions() *shm.Options {
	return &shm.Options{
		Size: goldenSize, RegionSize: goldenRegion, ExpectedEntries: goldenEntries,
		Seed: goldenSeed, HeartbeatInterval: time.Hour,
		Now:    func() time.Time { return goldenCreated },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// buildGolden writes the golden cache file into dir with the real writer
// and returns its bytes. instance_id is then fixed (and layout_sum
// recomputed) so that the file is reproducible.
func buildGolden(tb testing.TB, dir string) []byte {
	tb.Helper()
	w, err := shm.OpenWriter(dir, goldenOptions())
	if err != nil {
		tb.Fatal(err)
	}
	for _, op := range goldenOps {
		g := goldenItems[op.id]
		switch op.op {
		case "put":
			it := g.item
			it.Key = g.key()
			if err := w.Put(&it); err != nil {
				tb.Fatalf("put %s: %v", op.id, err)
			}
		case "delete":
			if !w.Delete(g.key()) {
				tb.Fatalf("delete %s found nothing", op.id)
			}
		case "mark-stale":
			if !w.MarkStale(g.key()) {
				tb.Fatalf("mark-stale %s found nothing", op.id)
			}
		}
	}
	if s := w.Stats(); s.Evictions != 0 || s.Rejected != 0 {
		tb.Fatalf("golden writer stats %+v: want no evictions or rejections", s)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, shm.FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[64:], goldenInstanceID)
	binary.LittleEndian.PutUint64(b[96:], xxhash.Sum64(b[:96]))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return b
}

// ---- A reader written from docs/format.md alone ----

// specFile is a parsed cache file header (docs/format.md, "Header").
type specFile struct {
	b                                             []byte
	seed                                          uint64
	bucketLog2                                    uint32
	regionSize, regionCount, indexOff, arenaOff   uint64
	fileSize, arenaLen                            uint64
	state                                         uint32
	head, tail                                    uint64
	major, minor                                  uint16
	headerSize, slotsPerBucket, maxKey, maxHeader uint32
	features, instanceID, createdMs, layoutSum    uint64
	adoptGen                                      uint32
	heartbeat, writerStart, invalSeq, invalOff    uint64
	stats                                         [10]uint64
}

var leb = binary.LittleEndian

func specParse(b []byte) (*specFile, error) {
	if len(b) < 4096 {
		return nil, errors.New("shorter than the header")
	}
	if string(b[0:8]) != "ZHCACHE\x00" {
		return nil, errors.New("bad magic")
	}
	f := &specFile{b: b}
	f.major, f.minor = leb.Uint16(b[8:]), leb.Uint16(b[10:])
	if f.major != 2 {
		return nil, fmt.Errorf("major version %d", f.major)
	}
	f.layoutSum = leb.Uint64(b[96:])
	if xxhash.Sum64(b[0:96]) != f.layoutSum {
		return nil, errors.New("layout_sum mismatch")
	}
	f.headerSize = leb.Uint32(b[12:])
	f.features = leb.Uint64(b[16:])
	f.seed = leb.Uint64(b[24:])
	f.bucketLog2 = leb.Uint32(b[32:])
	f.slotsPerBucket = leb.Uint32(b[36:])
	f.regionSize = uint64(leb.Uint32(b[40:]))
	f.regionCount = uint64(leb.Uint32(b[44:]))
	f.indexOff = leb.Uint64(b[48:])
	f.arenaOff = leb.Uint64(b[56:])
	f.instanceID = leb.Uint64(b[64:])
	f.createdMs = leb.Uint64(b[72:])
	f.fileSize = leb.Uint64(b[80:])
	f.maxKey = leb.Uint32(b[88:])
	f.maxHeader = leb.Uint32(b[92:])
	f.arenaLen = f.regionSize * f.regionCount
	if f.headerSize != 4096 || f.slotsPerBucket != 5 || f.bucketLog2 < 1 || f.bucketLog2 > 32 ||
		f.regionSize < 4096 || f.regionSize%4096 != 0 || f.regionCount < 4 || f.indexOff != 4096 ||
		f.arenaOff != f.indexOff+128<<f.bucketLog2 || f.fileSize != f.arenaOff+f.arenaLen {
		return nil, errors.New("inconsistent layout")
	}
	if uint64(len(b)) < f.fileSize {
		return nil, errors.New("truncated")
	}
	f.state = leb.Uint32(b[128:])
	f.adoptGen = leb.Uint32(b[132:])
	f.head = leb.Uint64(b[192:])
	f.tail = leb.Uint64(b[256:])
	f.heartbeat = leb.Uint64(b[320:])
	f.writerStart = leb.Uint64(b[328:])
	f.invalSeq = leb.Uint64(b[384:])
	f.invalOff = leb.Uint64(b[392:])
	for i := range f.stats {
		f.stats[i] = leb.Uint64(b[448+8*i:])
	}
	return f, nil
}

// specBuckets is docs/format.md's bucket selection.
func (f *specFile) specBuckets(h uint64) (i1, i2 uint64) {
	mask := uint64(1)<<f.bucketLog2 - 1
	i1 = h & mask
	i2 = ((bits.RotateLeft64(h, 32) * 0x9e3779b97f4a7c15) >> 17) & mask
	if i2 == i1 {
		i2 = i1 ^ 1
	}
	return i1, i2
}

// specEntry is a verified, parsed entry.
type specEntry struct {
	pos, meta uint64
	raw       []byte
	status    int
	flags     uint16
	stored    int64
	expires   int64
	effective int64
	initAge   uint32
	swr, sie  uint32
	key       []byte
	vary      []string
	etag, lm  string
	tags      []string
	headers   [][2]string
	body      []byte
}

// specLookup follows docs/format.md, "Reader protocol" (without the
// retries: the file is not changing). found reports a matching slot;
// entry is nil when the slot's entry did not verify.
func (f *specFile) specLookup(key []byte) (h uint64, i1, i2 uint64, found bool, e *specEntry, why string) {
	d := xxhash.NewWithSeed(f.seed)
	d.Write(key)
	h = d.Sum64()
	tag := h | 1
	i1, i2 = f.specBuckets(h)
	var pos, meta uint64
	for _, bi := range []uint64{i1, i2} {
		bo := f.indexOff + bi*128
		if leb.Uint32(f.b[bo:])&1 != 0 {
			return h, i1, i2, false, nil, "bucket sequence odd"
		}
		for s := uint64(0); s < 5; s++ {
			so := bo + 8 + s*24
			if leb.Uint64(f.b[so:]) == tag {
				pos, meta, found = leb.Uint64(f.b[so+8:]), leb.Uint64(f.b[so+16:]), true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		return h, i1, i2, false, nil, "no slot"
	}
	n := meta & 0xffffffff
	if pos < f.tail {
		return h, i1, i2, true, nil, "reclaimed"
	}
	if n < 96 || n > f.regionSize || n%8 != 0 || pos%8 != 0 || pos%f.regionSize+n > f.regionSize || pos-f.tail >= f.arenaLen {
		return h, i1, i2, true, nil, "slot out of range"
	}
	off := f.arenaOff + pos%f.arenaLen
	b := append([]byte(nil), f.b[off:off+n]...)
	if leb.Uint32(b[0:]) != 0x3145485a || uint64(leb.Uint32(b[4:])) != n || leb.Uint64(b[16:]) != pos || leb.Uint64(b[24:]) != h {
		return h, i1, i2, true, nil, "entry header mismatch"
	}
	if crc32.Update(uint32(f.seed), crc32.IEEETable, b[16:]) != leb.Uint32(b[8:]) {
		return h, i1, i2, true, nil, "checksum"
	}
	e = &specEntry{pos: pos, meta: meta, raw: b}
	e.stored = int64(leb.Uint64(b[32:]))
	e.expires = int64(leb.Uint64(b[40:]))
	e.initAge, e.swr, e.sie = leb.Uint32(b[48:]), leb.Uint32(b[52:]), leb.Uint32(b[56:])
	e.status, e.flags = int(leb.Uint16(b[60:])), leb.Uint16(b[62:])
	lens := []uint64{
		uint64(leb.Uint32(b[64:])), // key
		uint64(leb.Uint32(b[68:])), // vary
		uint64(leb.Uint16(b[80:])), // etag
		uint64(leb.Uint16(b[82:])), // last-modified
		uint64(leb.Uint32(b[84:])), // tags
		uint64(leb.Uint32(b[72:])), // headers
		uint64(leb.Uint32(b[76:])), // body
	}
	total := uint64(96)
	for _, l := range lens {
		total += l
	}
	if total > n || n-total >= 8 || leb.Uint64(b[88:]) != 0 {
		return h, i1, i2, true, nil, "payload lengths"
	}
	p := uint64(96)
	var parts [7][]byte
	for i, l := range lens {
		parts[i] = b[p : p+l]
		p += l
	}
	for _, c := range b[p:] {
		if c != 0 {
			return h, i1, i2, true, nil, "non-zero padding"
		}
	}
	if !bytes.Equal(parts[0], key) {
		return h, i1, i2, true, nil, "key mismatch"
	}
	e.key = parts[0]
	e.vary = specStrings(parts[1])
	e.etag, e.lm = string(parts[2]), string(parts[3])
	e.tags = specStrings(parts[4])
	for hb := parts[5]; len(hb) >= 6; {
		nl, vl := uint64(leb.Uint16(hb)), uint64(leb.Uint32(hb[2:]))
		if uint64(len(hb)-6) < nl+vl {
			return h, i1, i2, true, nil, "header block"
		}
		e.headers = append(e.headers, [2]string{string(hb[6 : 6+nl]), string(hb[6+nl : 6+nl+vl])})
		hb = hb[6+nl+vl:]
	}
	e.body = parts[6]
	e.effective = min(int64(meta>>32)*1000, e.expires)
	return h, i1, i2, true, e, ""
}

// specFresh is docs/format.md's freshness rule for a verified entry.
func specFresh(e *specEntry, now int64) bool {
	return e.flags&shm.FlagNoCache == 0 && now < e.effective
}

// specServe is docs/format.md, "Answering a request": what a client does
// with r at now, "hit" (answer from the mapping) or "forward" (send it to
// the sidecar), with the reason. It mirrors clients/go/zerohop's transport
// for requests without Cache-Control or preconditions.
func (f *specFile) specServe(r goldenReq, now int64) (serve, reason string) {
	if r.method != "GET" && r.method != "HEAD" {
		return "forward", "method"
	}
	_, _, _, _, e, _ := f.specLookup(r.primaryKey())
	switch {
	case e == nil:
		return "forward", "miss"
	case !specFresh(e, now):
		return "forward", "stale"
	}
	if e.flags&shm.FlagVaryIndex != 0 {
		_, _, _, _, e, _ = f.specLookup(r.varyKey(strBlock(e.vary)))
		switch {
		case e == nil:
			return "forward", "variant miss"
		case !specFresh(e, now):
			return "forward", "variant stale"
		}
	}
	if hasAuthorization(r) && e.flags&shm.FlagAuthShared == 0 {
		return "forward", "authorization"
	}
	if e.flags&shm.FlagHeadersOnly != 0 && r.method != "HEAD" {
		return "forward", "headers only"
	}
	return "hit", ""
}

func specStrings(b []byte) []string {
	out := []string{}
	for len(b) >= 2 {
		n := int(leb.Uint16(b))
		if len(b) < 2+n {
			break
		}
		out = append(out, string(b[2:2+n]))
		b = b[2+n:]
	}
	return out
}

// ---- expected.json ----

type goldenJSON struct {
	Format  string         `json:"format"`
	File    string         `json:"file"`
	Version string         `json:"version"`
	NowMs   int64          `json:"now_ms"`
	Header  goldenHeader   `json:"header"`
	Lookups []goldenLookup `json:"lookups"`
	Files   []goldenFile   `json:"files"`
}

// goldenFile is a variant of cache.shm under cases/: a writer state or a
// damage every client must handle as the Go reader does.
type goldenFile struct {
	File string `json:"file"`
	Note string `json:"note"`
	// OpenError is why opening fails: "truncated", "bad magic", "version",
	// "corrupt" or "not ready"; empty if the file opens.
	OpenError string `json:"open_error,omitempty"`
	// ServesNormal: a normal reader (max_writer_silence 2000 ms, clock at
	// now_ms) serves from it. ServesOffline: an offline reader does.
	ServesNormal  bool `json:"serves_normal"`
	ServesOffline bool `json:"serves_offline"`
	// Miss lists the lookups that find no entry in this file (Get and
	// GetStale miss) when it is served; every other lookup is answered as
	// in lookups.
	Miss       []string `json:"miss"`
	MissReason string   `json:"miss_reason,omitempty"`
}

// goldenCase derives one cases/ file from the golden file's bytes.
type goldenCase struct {
	file, note, openErr string
	normal, offline     bool
	missReason          string
	mangle              func(b []byte) []byte
}

func setU32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte { leb.PutUint32(b[off:], v); return b }
}

func resum(b []byte) []byte { leb.PutUint64(b[96:], xxhash.Sum64(b[:96])); return b }

var goldenCases = []goldenCase{
	{"live.shm", "state 1 (live) with heartbeat_ms = now_ms: a normal reader serves every lookup", "", true, true, "",
		func(b []byte) []byte { leb.PutUint32(b[128:], 1); leb.PutUint64(b[320:], uint64(goldenNow)); return b }},
	{"dead-writer.shm", "state 1 (live) but heartbeat_ms 61 s before now_ms: the writer died; a normal reader misses everything, an offline one serves", "", false, true, "",
		setU32(128, 1)},
	{"abandoned.shm", "state 3 (abandoned): replaced by a newer file; no reader serves it, not even offline", "", false, false, "",
		setU32(128, 3)},
	{"not-ready.shm", "state 0 (init): not yet published", "not ready", false, false, "", setU32(128, 0)},
	{"truncated.shm", "shorter than file_size (the last region is missing)", "truncated", false, false, "",
		func(b []byte) []byte { return b[:len(b)-goldenRegion] }},
	{"short.shm", "shorter than the 4096-byte header", "truncated", false, false, "",
		func(b []byte) []byte { return b[:2048] }},
	{"bad-magic.shm", "magic is not ZHCACHE\\0", "bad magic", false, false, "",
		func(b []byte) []byte { b[6] = 'X'; return resum(b) }},
	{"major-3.shm", "a newer major version (layout_sum recomputed)", "version", false, false, "",
		func(b []byte) []byte { leb.PutUint16(b[8:], 3); return resum(b) }},
	{"major-1.shm", "an older major version (layout_sum recomputed)", "version", false, false, "",
		func(b []byte) []byte { leb.PutUint16(b[8:], 1); return resum(b) }},
	{"corrupt-header.shm", "created_ms changed without updating layout_sum", "corrupt", false, false, "",
		func(b []byte) []byte { b[72] ^= 1; return b }},
	{"bad-layout.shm", "region_count 3 with layout_sum recomputed: the layout checks fail", "corrupt", false, false, "",
		func(b []byte) []byte { leb.PutUint32(b[44:], 3); return resum(b) }},
	{"newer-minor.shm", "minor 7, unknown feature bits and reserved header bytes set (layout_sum recomputed): readers accept it", "", false, true, "",
		func(b []byte) []byte {
			leb.PutUint16(b[10:], 7)
			leb.PutUint64(b[16:], 1<<63|1)
			b[104], b[600] = 0xff, 0xff
			return resum(b)
		}},
	{"torn-bucket.shm", "bucket 5's seq is odd (a writer died mid-update): lookups that reach it miss after 16 tries and do not go on to their second bucket", "", false, true, "torn",
		func(b []byte) []byte { leb.PutUint32(b[4096+5*128:], leb.Uint32(b[4096+5*128:])|1); return b }},
	{"corrupt-entry.shm", "one byte of the plain entry's body flipped: its checksum fails", "", false, true, "corrupt",
		func(b []byte) []byte { b[goldenArenaOff+210] ^= 0x20; return b }},
	{"bad-slot.shm", "the plain entry's slot claims a total_len larger than a region: the range check fails before any copy", "", false, true, "corrupt",
		func(b []byte) []byte {
			so := 4096 + 5*128 + 8 + 16 // bucket 5, slot 0, meta
			leb.PutUint32(b[so:], 0x7ffffff8)
			return b
		}},
	{"reclaimed.shm", "tail moved to 65536 (the end of region 0, where every entry is): every entry is dead", "", false, true, "overrun",
		func(b []byte) []byte { leb.PutUint64(b[256:], goldenRegion); return b }},
}

const goldenArenaOff = shm.HeaderSize + 8*shm.BucketSize

// goldenCaseFiles returns the cases/ files derived from the golden file.
func goldenCaseFiles(file []byte) map[string][]byte {
	out := map[string][]byte{}
	for _, c := range goldenCases {
		out[c.file] = c.mangle(append([]byte(nil), file...))
	}
	return out
}

type goldenHeader struct {
	MagicHex       string            `json:"magic_hex"`
	Major          uint16            `json:"major"`
	Minor          uint16            `json:"minor"`
	HeaderSize     uint32            `json:"header_size"`
	Features       string            `json:"features"`
	Seed           string            `json:"seed"`
	BucketLog2     uint32            `json:"bucket_log2"`
	SlotsPerBucket uint32            `json:"slots_per_bucket"`
	RegionSize     uint64            `json:"region_size"`
	RegionCount    uint64            `json:"region_count"`
	IndexOff       uint64            `json:"index_off"`
	ArenaOff       uint64            `json:"arena_off"`
	InstanceID     string            `json:"instance_id"`
	CreatedMs      uint64            `json:"created_ms"`
	FileSize       uint64            `json:"file_size"`
	MaxKey         uint32            `json:"max_key"`
	MaxHeaders     uint32            `json:"max_headers"`
	LayoutSum      string            `json:"layout_sum"`
	State          uint32            `json:"state"`
	AdoptGen       uint32            `json:"adopt_gen"`
	Head           uint64            `json:"head"`
	Tail           uint64            `json:"tail"`
	HeartbeatMs    uint64            `json:"heartbeat_ms"`
	WriterStartMs  uint64            `json:"writer_start_ms"`
	InvalSeq       uint64            `json:"inval_seq"`
	InvalOff       uint64            `json:"inval_off"`
	Stats          map[string]uint64 `json:"stats"`
}

type goldenLookup struct {
	Name           string      `json:"name"`
	Note           string      `json:"note,omitempty"`
	Method         string      `json:"method"`
	Scheme         string      `json:"scheme"`
	Host           string      `json:"host"`
	Target         string      `json:"target"`
	RequestHeaders [][2]string `json:"request_headers,omitempty"`
	PrimaryKeyHex  string      `json:"primary_key_hex,omitempty"`
	KeyHex         string      `json:"key_hex"`
	Hash           string      `json:"hash"`
	Buckets        [2]uint64   `json:"buckets"`
	Expect         string      `json:"expect"`
	Serve          string      `json:"serve"`
	ServeReason    string      `json:"serve_reason,omitempty"`
	*GoldenEntry
}

// GoldenEntry is what a hit or stale lookup returns.
type GoldenEntry struct {
	Pos                uint64      `json:"pos"`
	TotalLen           uint64      `json:"total_len"`
	Status             int         `json:"status"`
	Flags              uint16      `json:"flags"`
	Headers            [][2]string `json:"headers"`
	BodyBase64         string      `json:"body_base64"`
	ETag               string      `json:"etag"`
	LastModified       string      `json:"last_modified"`
	EntryVary          []string    `json:"entry_vary"`
	Tags               []string    `json:"tags"`
	StoredMs           int64       `json:"stored_ms"`
	ExpiresMs          int64       `json:"expires_ms"`
	SlotFreshUntilS    uint64      `json:"slot_fresh_until_s"`
	EffectiveExpiresMs int64       `json:"effective_expires_ms"`
	InitialAge         uint32      `json:"initial_age"`
	SWR                uint32      `json:"swr"`
	SIE                uint32      `json:"sie"`
}

const goldenFormatNote = `Golden vectors for docs/format.md (cache file format 2.0). cache.shm was written by the Go writer (shm.OpenWriter) with the seed and clock below and closed cleanly (state 2), then instance_id was set to a fixed value and layout_sum recomputed so the file is reproducible. Open it read-only. Its state is 2 (clean): a normal reader serves nothing from it (docs/format.md, "Should the reader serve at all?"), so run the lookups with an offline reader, which skips the state and heartbeat check except for state 3 (Go: ReaderOptions{Offline: true}); cases/live.shm is the same file with state 1 and heartbeat_ms = now_ms, which a normal reader with its clock at now_ms serves. For each lookup: build the key from method/scheme/host/target (HEAD is looked up as GET) and compare with key_hex; hash = XXH64(key, header.seed) and buckets = the two candidate bucket indexes. If primary_key_hex is present the lookup is a Vary lookup: the primary key holds a FlagVaryIndex entry whose vary block names the request headers; build the secondary key from those names and request_headers (lines in order, names case-insensitive) and compare with key_hex. Then look key_hex up at now_ms; an entry verifies when, among the other checks of docs/format.md, the u32 at its offset 8 equals CRC-32/IEEE of its bytes [16, total_len) continuing from seed & 0xffffffff (zlib.crc32(bytes, seed & 0xffffffff) in Python and Node). expect is "hit" (fresh at now_ms), "stale" (the entry verifies but is not fresh: Get misses, GetStale returns it) or "miss" (no entry). serve is what a client answers for the request at now_ms (docs/format.md, "Answering a request"): "hit" (from the mapping) or "forward" (to the sidecar), with serve_reason; request_headers include Authorization where a lookup tests flag 16. files lists the cases/ variants of cache.shm (writer states and damage): open_error, whether a normal and an offline reader serve, and which lookups then miss. For hit and stale the entry fields follow: headers in stored order; body as base64; expires_ms is the entry's own field, effective_expires_ms = min(slot_fresh_until_s*1000, expires_ms); flags: 1 vary-index, 2 must-revalidate, 4 no-cache, 8 headers-only, 16 authorization-shareable. Tags starting with a NUL byte are reserved: NUL, then vary:, then 16 lower-case hex digits of XXH64(primary key, seed 0) links a variant to its URL. u64 values that may exceed 2^53 are hex strings.`

var goldenStatNames = []string{"entries", "inserts", "replaces", "deletes", "evictions", "reclaimed", "regions_reclaimed", "purges", "bytes_written", "rejected"}

func hex64(v uint64) string { return fmt.Sprintf("0x%016x", v) }

// makeGoldenJSON derives expected.json from the inputs above and, for the
// positions and header words, from the file (read with the spec reader).
func makeGoldenJSON(t *testing.T, file []byte) goldenJSON {
	f, err := specParse(file)
	if err != nil {
		t.Fatal(err)
	}
	g := goldenJSON{Format: goldenFormatNote, File: shm.FileName, Version: "2.0", NowMs: goldenNow}
	g.Header = goldenHeader{
		MagicHex: hex.EncodeToString([]byte(shm.Magic)), Major: f.major, Minor: f.minor, HeaderSize: f.headerSize,
		Features: hex64(f.features), Seed: hex64(f.seed), BucketLog2: f.bucketLog2,
		SlotsPerBucket: f.slotsPerBucket, RegionSize: f.regionSize, RegionCount: f.regionCount,
		IndexOff: f.indexOff, ArenaOff: f.arenaOff, InstanceID: hex64(f.instanceID),
		CreatedMs: f.createdMs, FileSize: f.fileSize, MaxKey: f.maxKey, MaxHeaders: f.maxHeader,
		LayoutSum: hex64(f.layoutSum), State: f.state, AdoptGen: f.adoptGen, Head: f.head, Tail: f.tail,
		HeartbeatMs: f.heartbeat, WriterStartMs: f.writerStart, InvalSeq: f.invalSeq, InvalOff: f.invalOff,
		Stats: map[string]uint64{},
	}
	for i, n := range goldenStatNames {
		g.Header.Stats[n] = f.stats[i]
	}
	for _, l := range goldenLookups {
		r := l.req
		gl := goldenLookup{Name: l.name, Note: l.note, Method: r.method, Scheme: r.scheme, Host: r.host,
			Target: r.target, RequestHeaders: r.headers, Expect: l.expect}
		key := r.primaryKey()
		if l.viaVary {
			gl.PrimaryKeyHex = hex.EncodeToString(key)
			_, _, _, _, marker, why := f.specLookup(key)
			if marker == nil || marker.flags&shm.FlagVaryIndex == 0 {
				t.Fatalf("lookup %q: no vary marker under the primary key (%s)", l.name, why)
			}
			key = r.varyKey(strBlock(marker.vary))
		}
		gl.Serve, gl.ServeReason = f.specServe(r, goldenNow)
		gl.KeyHex = hex.EncodeToString(key)
		h, i1, i2, _, se, _ := f.specLookup(key)
		gl.Hash, gl.Buckets = hex64(h), [2]uint64{i1, i2}
		if l.expect != "miss" {
			it := goldenItems[l.id].item
			if se == nil {
				t.Fatalf("lookup %q: no verified entry in the file", l.name)
			}
			ge := &GoldenEntry{
				Pos: se.pos, TotalLen: se.meta & 0xffffffff, Status: it.Status, Flags: it.Flags,
				Headers: headerLines(it.Header), BodyBase64: base64.StdEncoding.EncodeToString(it.Body),
				ETag: it.ETag, LastModified: it.LastModified, EntryVary: nonNil(it.Vary), Tags: nonNil(it.Tags),
				StoredMs: it.StoredMs, ExpiresMs: it.ExpiresMs, InitialAge: it.InitialAge, SWR: it.SWR, SIE: it.SIE,
			}
			if it.ExpiresMs > 0 {
				ge.SlotFreshUntilS = uint64((it.ExpiresMs + 999) / 1000)
			}
			for _, op := range goldenOps {
				if op.op == "mark-stale" && op.id == l.id {
					// A soft purge makes the slot fresh until the purge (the
					// writer's clock), so staleness counts from it.
					ge.SlotFreshUntilS = min(ge.SlotFreshUntilS, uint64(goldenCreated.Unix()))
				}
			}
			ge.EffectiveExpiresMs = min(int64(ge.SlotFreshUntilS)*1000, it.ExpiresMs)
			gl.GoldenEntry = ge
		}
		g.Lookups = append(g.Lookups, gl)
	}
	files := goldenCaseFiles(file)
	for _, c := range goldenCases {
		gf := goldenFile{File: "cases/" + c.file, Note: c.note, OpenError: c.openErr,
			ServesNormal: c.normal, ServesOffline: c.offline, Miss: []string{}, MissReason: c.missReason}
		if c.openErr == "" {
			cf, err := specParse(files[c.file])
			if err != nil {
				t.Fatalf("%s: %v", c.file, err)
			}
			for _, l := range goldenLookups {
				if l.expect != "miss" && !specFinds(cf, l.req, l.viaVary) {
					gf.Miss = append(gf.Miss, l.name)
				}
			}
		}
		g.Files = append(g.Files, gf)
	}
	return g
}

// specFinds reports whether the spec reader finds a verified entry for r
// in f (through its vary marker if viaVary).
func specFinds(f *specFile, r goldenReq, viaVary bool) bool {
	key := r.primaryKey()
	if viaVary {
		_, _, _, _, m, _ := f.specLookup(key)
		if m == nil {
			return false
		}
		key = r.varyKey(strBlock(m.vary))
	}
	_, _, _, _, e, _ := f.specLookup(key)
	return e != nil
}

// headerLines is the stored order of a header: sorted by name, values in order.
func headerLines(h http.Header) [][2]string {
	out := [][2]string{}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range h[k] {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// pairRE matches a two-element array of strings or numbers spread over
// lines by json.Encoder's indentation.
var pairRE = regexp.MustCompile(`\[\s*("(?:[^"\\]|\\.)*"|\d+),\s*("(?:[^"\\]|\\.)*"|\d+)\s*\]`)

// marshalGolden writes g indented, without HTML escaping, with [name, value]
// pairs and bucket pairs on one line.
func marshalGolden(t *testing.T, g goldenJSON) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(g); err != nil {
		t.Fatal(err)
	}
	return pairRE.ReplaceAll(buf.Bytes(), []byte("[$1, $2]"))
}

// goldenMask zeroes the header words that legitimately differ between two
// runs of the writer: instance_id, created_ms, layout_sum, heartbeat and
// writer_start.
func goldenMask(b []byte) []byte {
	b = append([]byte(nil), b...)
	for _, r := range [][2]int{{64, 80}, {96, 104}, {320, 336}} {
		clear(b[r[0]:r[1]])
	}
	return b
}

func TestGolden(t *testing.T) {
	filePath := filepath.Join(goldenDir, shm.FileName)
	jsonPath := filepath.Join(goldenDir, "expected.json")
	if *update {
		b := buildGolden(t, t.TempDir())
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filePath, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(jsonPath, marshalGolden(t, makeGoldenJSON(t, b)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(goldenDir, "cases"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, cb := range goldenCaseFiles(b) {
			if err := os.WriteFile(filepath.Join(goldenDir, "cases", name), cb, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("wrote %s (%d bytes) and %s", filePath, len(b), jsonPath)
	}
	file, err := os.ReadFile(filePath)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update . in shm/)", err)
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var want goldenJSON
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if len(want.Lookups) != len(goldenLookups) {
		t.Fatalf("expected.json has %d lookups; want %d (run with -update)", len(want.Lookups), len(goldenLookups))
	}

	t.Run("reader", func(t *testing.T) {
		r, err := shm.Open(goldenDir, &shm.ReaderOptions{Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		checkGoldenHeader(t, want.Header, r.WriterStats())
		for _, l := range want.Lookups {
			t.Run(l.Name, func(t *testing.T) { checkReaderLookup(t, r, want.NowMs, l) })
		}
		if s := r.Stats(); s.Corrupt != 0 || s.Collisions != 0 || s.Torn != 0 || s.Overruns != 0 || s.Faults != 0 {
			t.Errorf("reader stats %+v; want no corrupt, collision, torn, overrun or fault", s)
		}
	})

	t.Run("spec reader", func(t *testing.T) {
		f, err := specParse(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range want.Lookups {
			t.Run(l.Name, func(t *testing.T) { checkSpecLookup(t, f, want.NowMs, l) })
		}
	})

	t.Run("cases", func(t *testing.T) {
		derived := goldenCaseFiles(file)
		for _, gf := range want.Files {
			t.Run(gf.File, func(t *testing.T) { checkGoldenCase(t, want, gf, derived[strings.TrimPrefix(gf.File, "cases/")]) })
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		fresh := buildGolden(t, t.TempDir())
		if len(fresh) != len(file) {
			t.Fatalf("writer makes a %d-byte file; checked-in file is %d bytes", len(fresh), len(file))
		}
		a, b := goldenMask(fresh), goldenMask(file)
		if i := firstDiff(a, b); i >= 0 {
			t.Errorf("writer output differs from the checked-in file at byte %d (%s): got %#02x; want %#02x — a format change needs a version decision and -update",
				i, goldenRegionOf(i), a[i], b[i])
		}
		got := marshalGolden(t, makeGoldenJSON(t, file))
		if !bytes.Equal(got, raw) {
			t.Errorf("expected.json differs from what the inputs produce (key encoding or expectations changed); run with -update and review the diff")
		}
	})
}

var goldenOpenErrors = map[string]error{
	"truncated": shm.ErrTruncated, "bad magic": shm.ErrBadMagic, "version": shm.ErrVersion,
	"corrupt": shm.ErrCorrupt, "not ready": shm.ErrNotReady,
}

// checkGoldenCase opens a cases/ file with a normal and an offline
// shm.Reader and checks every lookup against expected.json.
func checkGoldenCase(t *testing.T, want goldenJSON, gf goldenFile, derived []byte) {
	onDisk, err := os.ReadFile(filepath.Join(goldenDir, gf.File))
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update . in shm/)", err)
	}
	if !bytes.Equal(onDisk, derived) {
		t.Fatalf("%s differs from what goldenCases derives from cache.shm; run with -update", gf.File)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, shm.FileName), onDisk, 0o644); err != nil {
		t.Fatal(err)
	}
	miss := map[string]bool{}
	for _, n := range gf.Miss {
		miss[n] = true
	}
	for _, offline := range []bool{false, true} {
		r, err := shm.Open(dir, &shm.ReaderOptions{Offline: offline})
		if gf.OpenError != "" {
			if !errors.Is(err, goldenOpenErrors[gf.OpenError]) {
				t.Fatalf("Open: %v; want %s", err, gf.OpenError)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		serves := gf.ServesNormal
		if offline {
			serves = gf.ServesOffline
		}
		for _, l := range want.Lookups {
			key, _ := hex.DecodeString(l.KeyHex)
			_, _, fresh := r.Get(nil, key, want.NowMs)
			_, _, found := r.GetStale(nil, key, want.NowMs)
			wantFresh, wantFound := l.Expect == "hit", l.Expect != "miss"
			if !serves || miss[l.Name] {
				wantFresh, wantFound = false, false
			}
			if fresh != wantFresh || found != wantFound {
				t.Errorf("offline %v, lookup %q: Get %v GetStale %v; want %v %v", offline, l.Name, fresh, found, wantFresh, wantFound)
			}
		}
		s := r.Stats()
		r.Close()
		if gf.MissReason != "" && !offline {
			continue
		}
		var n uint64
		switch gf.MissReason {
		case "torn":
			n = s.Torn
		case "corrupt":
			n = s.Corrupt
		case "overrun":
			n = s.Overruns
		default:
			n = 1
		}
		if n == 0 {
			t.Errorf("offline %v: stats %+v count no %s lookup", offline, s, gf.MissReason)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func goldenRegionOf(off int) string {
	const arena = goldenSize - 4*goldenRegion
	switch {
	case off < shm.HeaderSize:
		return "header"
	case off < arena:
		return fmt.Sprintf("index bucket %d", (off-shm.HeaderSize)/shm.BucketSize)
	default:
		return fmt.Sprintf("arena position %d", off-arena)
	}
}

func checkGoldenHeader(t *testing.T, h goldenHeader, s shm.Stats) {
	t.Helper()
	got := map[string]uint64{
		"state": uint64(s.State), "adopt_gen": uint64(s.AdoptGen), "head": s.Head, "tail": s.Tail,
		"heartbeat_ms": s.HeartbeatMs, "inval_seq": s.InvalSeq,
		"entries": s.Entries, "inserts": s.Inserts, "replaces": s.Replaces, "deletes": s.Deletes,
		"evictions": s.Evictions, "reclaimed": s.Reclaimed, "regions_reclaimed": s.RegionsReclaimed,
		"purges": s.Purges, "bytes_written": s.BytesWritten, "rejected": s.Rejected,
	}
	want := map[string]uint64{
		"state": uint64(h.State), "adopt_gen": uint64(h.AdoptGen), "head": h.Head, "tail": h.Tail,
		"heartbeat_ms": h.HeartbeatMs, "inval_seq": h.InvalSeq,
	}
	for k, v := range h.Stats {
		want[k] = v
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("writer stats: got %v; want %v", got, want)
	}
	if h.State != uint32(shm.StateClean) {
		t.Errorf("state: got %d; want %d (clean)", h.State, shm.StateClean)
	}
}

// checkKeys rebuilds l's keys from its request and compares them with the
// hex in expected.json.
func checkKeys(t *testing.T, l goldenLookup, marker []byte) []byte {
	t.Helper()
	r := goldenReq{l.Method, l.Scheme, l.Host, l.Target, l.RequestHeaders}
	key := r.primaryKey()
	if l.PrimaryKeyHex != "" {
		if got := hex.EncodeToString(key); got != l.PrimaryKeyHex {
			t.Errorf("primary key: got %s; want %s", got, l.PrimaryKeyHex)
		}
		key = r.varyKey(marker)
	}
	if got := hex.EncodeToString(key); got != l.KeyHex {
		t.Errorf("key: got %s; want %s", got, l.KeyHex)
	}
	return key
}

func checkReaderLookup(t *testing.T, r *shm.Reader, now int64, l goldenLookup) {
	if got := readerServe(r, goldenReq{l.Method, l.Scheme, l.Host, l.Target, l.RequestHeaders}, now); got != l.Serve {
		t.Errorf("serve: got %s; want %s (%s)", got, l.Serve, l.ServeReason)
	}
	var marker []byte
	if l.PrimaryKeyHex != "" {
		pk, _ := hex.DecodeString(l.PrimaryKeyHex)
		e, _, ok := r.GetStale(nil, pk, now)
		if !ok || e.Flags&shm.FlagVaryIndex == 0 {
			t.Fatalf("primary key: hit %v, flags %d; want a hit with FlagVaryIndex", ok, e.Flags)
		}
		marker = e.Vary
	}
	key := checkKeys(t, l, marker)
	e, _, fresh := r.Get(nil, key, now)
	se, _, found := r.GetStale(nil, key, now)
	wantFresh, wantFound := l.Expect == "hit", l.Expect != "miss"
	if fresh != wantFresh || found != wantFound {
		t.Fatalf("Get hit %v, GetStale hit %v; want %v, %v (expect %s)", fresh, found, wantFresh, wantFound, l.Expect)
	}
	if !found {
		return
	}
	if fresh && !bytes.Equal(e.Raw, se.Raw) {
		t.Errorf("Get and GetStale returned different entries")
	}
	got := GoldenEntry{
		Pos: se.Pos, TotalLen: uint64(len(se.Raw)), Status: se.Status, Flags: se.Flags,
		BodyBase64: base64.StdEncoding.EncodeToString(se.Body), ETag: string(se.ETag),
		LastModified: string(se.LastModified), EntryVary: iterStrings(se.Vary), Tags: iterStrings(se.Tags),
		StoredMs: se.StoredMs, ExpiresMs: int64(leb.Uint64(se.Raw[40:])), SlotFreshUntilS: l.SlotFreshUntilS,
		EffectiveExpiresMs: se.ExpiresMs, InitialAge: se.InitialAge, SWR: se.SWR, SIE: se.SIE, Headers: [][2]string{},
	}
	for it := shm.NewHeaderIter(se.Headers); it.Next(); {
		got.Headers = append(got.Headers, [2]string{string(it.Name()), string(it.Value())})
	}
	if !reflect.DeepEqual(got, *l.GoldenEntry) {
		t.Errorf("entry:\n got %+v\nwant %+v", got, *l.GoldenEntry)
	}
	if se.Hash != mustHex64(t, l.Hash) || !bytes.Equal(se.Key, key) {
		t.Errorf("hash %#x key %x; want %s %s", se.Hash, se.Key, l.Hash, l.KeyHex)
	}
}

// readerServe is what clients/go/zerohop's transport answers for r through
// shm.Reader: a fresh primary entry, a fresh variant behind a vary marker,
// Authorization only with FlagAuthShared, headers-only entries only for HEAD.
func readerServe(r *shm.Reader, req goldenReq, now int64) string {
	if req.method != "GET" && req.method != "HEAD" {
		return "forward"
	}
	e, _, ok := r.Get(nil, req.primaryKey(), now)
	if ok && e.Flags&shm.FlagVaryIndex != 0 {
		e, _, ok = r.Get(nil, req.varyKey(e.Vary), now)
	}
	switch {
	case !ok:
		return "forward"
	case hasAuthorization(req) && e.Flags&shm.FlagAuthShared == 0:
		return "forward"
	case e.Flags&shm.FlagHeadersOnly != 0 && req.method != "HEAD":
		return "forward"
	}
	return "hit"
}

func checkSpecLookup(t *testing.T, f *specFile, now int64, l goldenLookup) {
	var marker []byte
	if l.PrimaryKeyHex != "" {
		pk, _ := hex.DecodeString(l.PrimaryKeyHex)
		_, _, _, _, e, why := f.specLookup(pk)
		if e == nil || e.flags&shm.FlagVaryIndex == 0 {
			t.Fatalf("primary key: %v (%s); want an entry with FlagVaryIndex", e, why)
		}
		marker = strBlock(e.vary)
	}
	key := checkKeys(t, l, marker)
	h, i1, i2, found, e, why := f.specLookup(key)
	if hex64(h) != l.Hash || [2]uint64{i1, i2} != l.Buckets {
		t.Errorf("hash %s buckets %d,%d; want %s %v", hex64(h), i1, i2, l.Hash, l.Buckets)
	}
	if l.Expect == "miss" {
		if found {
			t.Errorf("found a slot (%s); want none", why)
		}
		return
	}
	if e == nil {
		t.Fatalf("no verified entry: %s", why)
	}
	fresh := e.flags&shm.FlagNoCache == 0 && now < e.effective
	if fresh != (l.Expect == "hit") {
		t.Errorf("fresh at %d: %v (effective expiry %d); want expect %s", now, fresh, e.effective, l.Expect)
	}
	got := GoldenEntry{
		Pos: e.pos, TotalLen: e.meta & 0xffffffff, Status: e.status, Flags: e.flags, Headers: e.headers,
		BodyBase64: base64.StdEncoding.EncodeToString(e.body), ETag: e.etag, LastModified: e.lm,
		EntryVary: e.vary, Tags: e.tags, StoredMs: e.stored, ExpiresMs: e.expires, SlotFreshUntilS: e.meta >> 32,
		EffectiveExpiresMs: e.effective, InitialAge: e.initAge, SWR: e.swr, SIE: e.sie,
	}
	if got.Headers == nil {
		got.Headers = [][2]string{}
	}
	if !reflect.DeepEqual(got, *l.GoldenEntry) {
		t.Errorf("entry:\n got %+v\nwant %+v", got, *l.GoldenEntry)
	}
}

func iterStrings(b []byte) []string {
	out := []string{}
	for it := shm.NewStringIter(b); it.Next(); {
		out = append(out, it.String())
	}
	return out
}

func mustHex64(t *testing.T, s string) uint64 {
	var v uint64
	if _, err := fmt.Sscanf(s, "0x%x", &v); err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return v
}

// TestFormatDocExample checks docs/format.md's worked entry dump and
// checksum example against the golden file, byte for byte.
func TestFormatDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/format.md")
	if err != nil {
		t.Skipf("docs/format.md: %v", err)
	}
	file, err := os.ReadFile(filepath.Join(goldenDir, shm.FileName))
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, line := range strings.Split(string(doc), "\n") {
		addr, rest, ok := strings.Cut(line, ": ")
		if !ok || len(addr) != 8 || !strings.HasPrefix(addr, "0000") {
			continue
		}
		off, err := strconv.ParseUint(addr, 16, 32)
		if err != nil || len(rest) < 39 {
			continue
		}
		want, err := hex.DecodeString(strings.ReplaceAll(rest[:39], " ", ""))
		if err != nil || len(want) != 16 {
			t.Fatalf("bad dump line %q", line)
		}
		if got := file[off : off+16]; !bytes.Equal(got, want) {
			t.Errorf("docs/format.md dump at %#x: %x; the golden file has %x", off, want, got)
		}
		rows++
	}
	if rows < 14 {
		t.Errorf("found %d dump lines in docs/format.md; want the 14 of the worked entry", rows)
	}
	f, err := specParse(file)
	if err != nil {
		t.Fatal(err)
	}
	e := file[f.arenaOff : f.arenaOff+224]
	sum := crc32.Update(uint32(f.seed), crc32.IEEETable, e[16:])
	line := fmt.Sprintf("sum = CRC32(bytes [16, 224) of the entry, 0x%08x) = 0x%08x", uint32(f.seed), sum)
	if !strings.Contains(string(doc), line) || leb.Uint32(e[8:]) != sum {
		t.Errorf("docs/format.md lacks %q (or the file's sum %#x differs)", line, leb.Uint32(e[8:]))
	}
}

// TestVersionCompat: readers reject another major version and accept a
// newer minor version with unknown feature bits (additions they ignore).
func TestVersionCompat(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(goldenDir, shm.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		mangle func(b []byte)
		want   error // nil: opens and serves the golden entries
	}{
		{"as written", func(b []byte) {}, nil},
		{"newer minor", func(b []byte) { leb.PutUint16(b[10:], 7) }, nil},
		{"unknown feature bits", func(b []byte) { leb.PutUint64(b[16:], 1<<63|1) }, nil},
		{"reserved header bytes set", func(b []byte) { b[104] = 0xff; b[600] = 0xff }, nil},
		{"major 1 (XXH64 entry checksums)", func(b []byte) { leb.PutUint16(b[8:], 1) }, shm.ErrVersion},
		{"major 3", func(b []byte) { leb.PutUint16(b[8:], 3) }, shm.ErrVersion},
		{"major 0", func(b []byte) { leb.PutUint16(b[8:], 0) }, shm.ErrVersion},
		{"layout_sum stale", func(b []byte) { leb.PutUint64(b[72:], 1); leb.PutUint64(b[96:], leb.Uint64(b[96:])) }, shm.ErrCorrupt},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := append([]byte(nil), orig...)
			tt.mangle(b)
			if tt.name != "layout_sum stale" {
				leb.PutUint64(b[96:], xxhash.Sum64(b[:96]))
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, shm.FileName), b, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := shm.Open(dir, &shm.ReaderOptions{Offline: true})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: got %v; want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			defer r.Close()
			e, _, ok := r.Get(nil, goldenItems["plain"].key(), goldenNow)
			if !ok || string(e.Body) != "Hello, zerohop!\n" {
				t.Errorf("Get: hit %v body %q; want the plain entry", ok, e.Body)
			}
		})
	}
}

// TestSlotFreshUntil checks the slot's u32 fresh-until second against the
// entry's expires_ms: rounded up, saturating at 0xffffffff
// (2106-02-07T06:28:15Z), and the effective expiry is the earlier of the two.
// The writer used to wrap past 2106: an entry fresh until just after
// 2106-02-07 was stale at once and one fresh until 2200 was cut to 2063.
func TestSlotFreshUntil(t *testing.T) {
	const u32s = int64(1) << 32 // first second that does not fit
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).UnixMilli()
	for _, tt := range []struct {
		name      string
		expiresMs int64
		want      int64 // effective expiry
	}{
		{"whole second", 4102531200000, 4102531200000},
		{"rounded up", 4102531200001, 4102531200001},
		{"zero: stale at once", 0, 0},
		{"last second that fits", (u32s - 1) * 1000, (u32s - 1) * 1000},
		{"just past 2106", u32s*1000 + 5000, (u32s - 1) * 1000},
		{"year 2200", time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), (u32s - 1) * 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, r, _ := openPair(t, small(t))
			k := shm.AppendKey(nil, "GET", "http", "x", "/")
			if err := w.Put(&shm.Item{Key: k, Status: 200, StoredMs: now, ExpiresMs: tt.expiresMs}); err != nil {
				t.Fatal(err)
			}
			e, _, ok := r.GetStale(nil, k, time.Now().UnixMilli())
			if !ok {
				t.Fatal("GetStale missed")
			}
			if e.ExpiresMs != tt.want {
				t.Errorf("effective expiry: got %d (%v); want %d (%v)", e.ExpiresMs, time.UnixMilli(e.ExpiresMs).UTC(), tt.want, time.UnixMilli(tt.want).UTC())
			}
		})
	}
}
