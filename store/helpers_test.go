package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// The content generator: every field of the item for (id, ver) is a pure
// function of them, so a check in another process (or after a restart)
// can regenerate what it must have read.

// corpus is text that compresses about like HTML or JSON does.
var corpus = func() []byte {
	words := []string{"the", "cache", "response", "header", "zerohop", "sidecar", "gateway", "memory",
		"shared", "entry", "value", "<div class=\"item\">", "</div>", "{\"id\":", "\"name\":", "true", "false",
		"null", "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
		"eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua"}
	var b bytes.Buffer
	x := uint64(1)
	for b.Len() < 1<<20 {
		x = mix(x)
		b.WriteString(words[x%uint64(len(words))])
		if x>>60 == 0 {
			b.WriteString(strconv.FormatUint(x%100000, 10))
		}
		b.WriteByte(' ')
	}
	return b.Bytes()
}()

func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

const groups = 16

func groupTag(g int) string { return "g" + strconv.Itoa(g) }

func genHost(id int) string { return "h" + strconv.Itoa(id%4) + ".test" }

func genTarget(id int) string { return "/p" + strconv.Itoa(id%8) + "/item/" + strconv.Itoa(id) }

func genKey(id int) []byte { return shm.AppendKey(nil, "GET", "http", genHost(id), genTarget(id)) }

// genBody returns the body of (id, ver): minBody..maxBody bytes of corpus.
func genBody(id int, ver uint64, minBody, maxBody int) []byte {
	h := mix(uint64(id)<<20 ^ ver)
	n := minBody
	if maxBody > minBody {
		n += int(h % uint64(maxBody-minBody+1))
	}
	off := int((h >> 24) % uint64(len(corpus)-n))
	b := make([]byte, 0, n+24)
	b = append(b, corpus[off:off+n]...)
	// Stamp the version in so that versions differ.
	stamp := fmt.Sprintf("|%d/%d|", id, ver)
	copy(b, stamp)
	return b
}

// genItem is the response stored for (id, ver) at nowMs, fresh for ttl.
func genItem(id int, ver uint64, nowMs int64, ttl time.Duration, minBody, maxBody int) *shm.Item {
	ct := "text/html; charset=utf-8"
	if id%10 == 7 {
		ct = "image/png"
	}
	it := &shm.Item{
		Key:    genKey(id),
		Status: 200,
		Header: http.Header{
			"Content-Type":  {ct},
			"Cache-Control": {"public, max-age=" + strconv.Itoa(int(ttl/time.Second))},
			"Etag":          {`"` + strconv.Itoa(id) + "-" + strconv.FormatUint(ver, 10) + `"`},
			"X-Ver":         {strconv.FormatUint(ver, 10)},
			"Server":        {"origin"},
		},
		Body:         genBody(id, ver, minBody, maxBody),
		StoredMs:     nowMs,
		ExpiresMs:    nowMs + ttl.Milliseconds(),
		InitialAge:   uint32(id % 5),
		SWR:          uint32(id % 3),
		SIE:          uint32(id % 7),
		ETag:         `"` + strconv.Itoa(id) + "-" + strconv.FormatUint(ver, 10) + `"`,
		LastModified: "Tue, 15 Nov 1994 08:12:31 GMT",
		Tags:         []string{groupTag(id % groups)},
	}
	if id%5 == 0 {
		it.Tags = append(it.Tags, "five")
	}
	return it
}

// checkGen verifies that it is exactly what the generator makes for the
// id and version it carries; it returns the version.
func checkGen(it *shm.Item, id int, minBody, maxBody int) (uint64, error) {
	ver, err := strconv.ParseUint(it.Header.Get("X-Ver"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("id %d: no X-Ver: %v", id, err)
	}
	want := genItem(id, ver, it.StoredMs, time.Duration(it.ExpiresMs-it.StoredMs)*time.Millisecond, minBody, maxBody)
	if err := sameItem(it, want, true); err != nil {
		return ver, fmt.Errorf("id %d ver %d: %v", id, ver, err)
	}
	return ver, nil
}

// sameItem compares every field; expiry is skipped when soft purges may
// have zeroed it.
func sameItem(got, want *shm.Item, skipExpiry bool) error {
	switch {
	case !bytes.Equal(got.Key, want.Key):
		return fmt.Errorf("key %q, want %q", got.Key, want.Key)
	case got.Status != want.Status:
		return fmt.Errorf("status %d, want %d", got.Status, want.Status)
	case !bytes.Equal(got.Body, want.Body):
		return fmt.Errorf("body differs (%d bytes, want %d)", len(got.Body), len(want.Body))
	case got.StoredMs != want.StoredMs:
		return fmt.Errorf("stored %d, want %d", got.StoredMs, want.StoredMs)
	case !skipExpiry && got.ExpiresMs != want.ExpiresMs:
		return fmt.Errorf("expires %d, want %d", got.ExpiresMs, want.ExpiresMs)
	case got.InitialAge != want.InitialAge || got.SWR != want.SWR || got.SIE != want.SIE || got.Flags != want.Flags:
		return fmt.Errorf("age/swr/sie/flags %d/%d/%d/%d, want %d/%d/%d/%d", got.InitialAge, got.SWR, got.SIE, got.Flags,
			want.InitialAge, want.SWR, want.SIE, want.Flags)
	case got.ETag != want.ETag || got.LastModified != want.LastModified:
		return fmt.Errorf("validators %q %q, want %q %q", got.ETag, got.LastModified, want.ETag, want.LastModified)
	case fmt.Sprint(got.Vary) != fmt.Sprint(want.Vary) && !(len(got.Vary) == 0 && len(want.Vary) == 0):
		return fmt.Errorf("vary %q, want %q", got.Vary, want.Vary)
	case fmt.Sprint(got.Tags) != fmt.Sprint(want.Tags) && !(len(got.Tags) == 0 && len(want.Tags) == 0):
		return fmt.Errorf("tags %q, want %q", got.Tags, want.Tags)
	}
	gh := bytes.NewBuffer(nil)
	wh := bytes.NewBuffer(nil)
	got.Header.Write(gh)
	want.Header.Write(wh)
	if gh.String() != wh.String() {
		return fmt.Errorf("header %q, want %q", gh, wh)
	}
	return nil
}

// quietLogger discards logs unless -v.
func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_800_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Ms() int64 { return c.Now().UnixMilli() }

// testOpts are options for tests: no free-space floor, quiet logs.
func testOpts(t testing.TB, c *clock) *Options {
	// No CPU governor: tests saturate the CPU and check every Put.
	o := &Options{MinFree: -1, CPUShare: -1, Logger: quietLogger(t), Queue: 1 << 16, QueueBytes: 1 << 30, CloseTimeout: 30 * time.Second}
	if c != nil {
		o.Now = c.Now
	}
	return o
}

func mustOpen(t testing.TB, dir string, o *Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func flush(t testing.TB, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// putAll puts items, flushing whenever the queue would drop.
func putAll(t testing.TB, s *Store, items ...*shm.Item) {
	t.Helper()
	for _, it := range items {
		for {
			d := s.c.dropped.Load()
			s.Put(it)
			if s.c.dropped.Load() == d {
				break
			}
			flush(t, s)
		}
	}
}

// mode returns invalidate.Soft if soft, else Hard.
func mode(soft bool) invalidate.Mode {
	if soft {
		return invalidate.Soft
	}
	return invalidate.Hard
}

// keyPurge returns the KindKey purge of a primary key (a GET).
func keyPurge(primary []byte, soft bool) invalidate.Purge {
	p, ok := shm.SplitKey(primary)
	if !ok || string(p.Method) != "GET" || len(p.Vary) != 0 {
		panic(fmt.Sprintf("keyPurge: %q is not a GET primary key", primary))
	}
	return invalidate.KeyPurge(string(p.Scheme), string(p.Host), string(p.Target), mode(soft))
}
