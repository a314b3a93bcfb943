// Package zerohop is the app-side Go client of the zerohop sidecar. It reads
// cache hits straight from the shared-memory file the sidecar keeps in a
// volume both containers mount (no socket, no proxy hop) and sends every
// other request to the sidecar over localhost.
//
// An app adopts it by setting its http.Client's Transport:
//
//	c, err := zerohop.Open("/var/run/zerohop", nil)
//	if err != nil { ... }
//	client := &http.Client{Transport: c.Transport()}
//
// The package imports only the cache file's reader: no proxy, store or
// daemon code ends up in the app.
//
// The cache is memory shared by the containers of one Linux host. On other
// systems (macOS, Windows: a developer's machine running the sidecar in a
// VM) Open returns a client without a mapping that sends every request to
// the sidecar, so the same app code runs there unchanged, only slower.
package zerohop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

// DefaultSidecar is the sidecar's default listen address.
const DefaultSidecar = "127.0.0.1:8089"

// Options configure a Client. The zero value is usable.
type Options struct {
	// Sidecar is the host:port of the sidecar's listener. Default: the
	// ZEROHOP_SIDECAR environment variable, else DefaultSidecar.
	Sidecar string
	// Direct sends misses to their URL as they are, for apps that already
	// address the sidecar (reverse-proxy routes). By default misses go
	// through the sidecar as an HTTP forward proxy, so absolute URLs keep
	// working unchanged.
	Direct bool
	// Fallback is the transport misses go through; when set, Sidecar and
	// Direct are ignored. It should not add Accept-Encoding on its own (the
	// default keeps http.Transport's DisableCompression on) so that the
	// sidecar keys variants on exactly the app's request headers.
	Fallback http.RoundTripper
	// MaxWriterSilence is how old the sidecar's heartbeat may be before hits
	// stop being served from the mapping. Default 2s.
	MaxWriterSilence time.Duration
	// BufferSize is the initial size of pooled lookup buffers. Default 64 KiB.
	BufferSize int
	// InvalidationLog is the log Invalidate appends to. Default
	// <dir>/inval/inval.log (mounted read-write into the app).
	InvalidationLog string
	// CountersDir is where the client publishes its counters for the
	// sidecar's /metrics, once a second (docs/format.md, "App counters").
	// Default: the invalidation log's directory, which the app mounts
	// read-write; "off" publishes nothing.
	CountersDir string
	// OnHit, if set, is called on the request's goroutine after each
	// response served from the shared mapping (not for misses, which the
	// sidecar records): the hook for recording shared-memory hits as
	// spans of the app's tracer. It must be quick and must not keep info
	// past the call. Default nil: no call, no cost.
	OnHit func(info HitInfo)
}

// Client reads the shared cache and forwards misses. It is safe for
// concurrent use.
type Client struct {
	r        *shm.Reader // nil where the cache cannot be mapped
	clock    clock
	fallback http.RoundTripper
	bufs     sync.Pool
	bufSize  int

	hits, misses, notModified, served atomic.Uint64
	bypass                            [bypassReasons]atomic.Uint64

	counters counterPublisher // publishes the counters to the sidecar

	onHit func(HitInfo)

	logPath string
	logMu   sync.Mutex
	log     *invalidate.Log
}

// Open maps the cache in dir read-only. It fails if the sidecar has not
// created the file yet; callers that start before the sidecar can retry.
// Off Linux it maps nothing (shm.Open fails with shm.ErrUnsupported) and
// the client sends every request to the sidecar.
func Open(dir string, opts *Options) (*Client, error) {
	r, err := shm.Open(dir, &shm.ReaderOptions{MaxWriterSilence: optsOrZero(opts).MaxWriterSilence})
	if errors.Is(err, shm.ErrUnsupported) {
		r = nil
	} else if err != nil {
		return nil, err
	}
	c, err := newClient(r, opts)
	if err != nil {
		return nil, err
	}
	c.logPath = optsOrZero(opts).InvalidationLog
	if c.logPath == "" {
		c.logPath = filepath.Join(dir, "inval", "inval.log")
	}
	if cd := optsOrZero(opts).CountersDir; r != nil && cd != "off" {
		if cd == "" {
			cd = filepath.Dir(c.logPath)
		}
		c.counters.start(c, cd)
	}
	return c, nil
}

// Invalidate appends rec (build it with invalidate.KeyRecord, PrefixRecord,
// TagRecord or AllRecord) to the invalidation log the sidecar applies, and
// waits until the sidecar has applied it, so that the app's next read
// cannot return what it purged (read-your-purge). It returns the record's
// sequence number; when ctx ends first, the record is still in the log and
// will be applied. Without a mapping it fails with shm.ErrUnsupported: the
// wait cannot be kept, so purge through the sidecar's admin API instead.
func (c *Client) Invalidate(ctx context.Context, rec invalidate.Record) (uint64, error) {
	if c.r == nil {
		return 0, fmt.Errorf("zerohop: invalidate: %w: no shared cache to wait on", shm.ErrUnsupported)
	}
	c.logMu.Lock()
	if c.log == nil {
		host, _ := os.Hostname()
		// Numbered above what the sidecar published, so that the wait
		// below never ends before the record is applied.
		lg, err := invalidate.OpenLog(c.logPath, &invalidate.LogOptions{Origin: "app@" + host, Applied: c.r})
		if err != nil {
			c.logMu.Unlock()
			return 0, err
		}
		c.log = lg
	}
	lg := c.log
	c.logMu.Unlock()
	seq, err := lg.Append(ctx, rec)
	if err != nil {
		return 0, err
	}
	return seq, invalidate.WaitApplied(ctx, c.r, seq)
}

func optsOrZero(o *Options) Options {
	if o == nil {
		return Options{}
	}
	return *o
}

func newClient(r *shm.Reader, opts *Options) (*Client, error) {
	o := optsOrZero(opts)
	if o.BufferSize <= 0 {
		o.BufferSize = 64 << 10
	}
	c := &Client{r: r, bufSize: o.BufferSize, fallback: o.Fallback, onHit: o.OnHit}
	c.clock.init()
	if c.fallback == nil {
		addr := o.Sidecar
		if addr == "" {
			addr = os.Getenv("ZEROHOP_SIDECAR")
		}
		if addr == "" {
			addr = DefaultSidecar
		}
		t := &http.Transport{
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}
		if !o.Direct {
			u, err := url.Parse("http://" + addr)
			if err != nil {
				return nil, fmt.Errorf("zerohop: sidecar address %q: %w", addr, err)
			}
			t.Proxy = http.ProxyURL(u)
		}
		c.fallback = t
	}
	c.bufs.New = func() any { b := make([]byte, c.bufSize); return &b }
	return c, nil
}

// Reader returns the underlying cache reader, nil without a mapping.
func (c *Client) Reader() *shm.Reader { return c.r }

// Get looks up the stored response for a GET of rawURL-equivalent parts
// into dst without allocating when dst is large enough, resolving Vary
// through the request header h (nil for none). It returns only fresh
// entries; the Entry aliases the returned buffer.
func (c *Client) Get(dst []byte, method, scheme, host, target string, h http.Header) (e shm.Entry, out []byte, ok bool) {
	if method == http.MethodHead {
		method = http.MethodGet // HEAD is answered from a stored GET
	}
	var kb [512]byte
	key := shm.AppendKey(kb[:0], method, scheme, host, target)
	out, ok = c.get(&e, dst, key, h, c.clock.nowMs())
	return e, out, ok
}

// GetKey is Get for a primary key the caller built with shm.AppendKey (and
// may keep and reuse: GetKey does not modify it), which saves building it
// on every lookup. A HEAD request must be looked up with the GET key.
func (c *Client) GetKey(dst, key []byte, h http.Header) (e shm.Entry, out []byte, ok bool) {
	out, ok = c.get(&e, dst, key, h, c.clock.nowMs())
	return e, out, ok
}

func (c *Client) lookup(dst []byte, method, scheme, host, target string, h http.Header, nowMs int64) (e shm.Entry, out []byte, ok bool) {
	if method == http.MethodHead {
		method = http.MethodGet // HEAD is answered from a stored GET
	}
	var kb [512]byte
	key := shm.AppendKey(kb[:0], method, scheme, host, target)
	out, ok = c.get(&e, dst, key, h, nowMs)
	return e, out, ok
}

// get looks the primary key up into *e and follows a Vary marker.
func (c *Client) get(e *shm.Entry, dst, key []byte, h http.Header, nowMs int64) ([]byte, bool) {
	if c.r == nil {
		return dst, false
	}
	dst, ok := c.r.GetInto(e, dst, key, nowMs)
	if !ok || e.Flags&shm.FlagVaryIndex == 0 {
		return dst, ok
	}
	return c.getVariant(e, dst, key, h, nowMs)
}

// getVariant looks up the variant of the request h of the response whose
// Vary marker is *e: the marker names the request headers the response
// varies on, and the response itself is stored under the key that includes
// them.
func (c *Client) getVariant(e *shm.Entry, dst, primary []byte, h http.Header, nowMs int64) ([]byte, bool) {
	get := func(name string) []string {
		if h == nil {
			return nil
		}
		return h.Values(name)
	}
	var kb [512]byte
	key := append(kb[:0], primary...) // never append to the caller's key
	key = shm.AppendVaryFromHeader(key, e.Vary, get)
	return c.r.GetInto(e, dst, key, nowMs)
}

// Stats are the client's counters.
type Stats struct {
	Hits        uint64 // answered from shared memory
	NotModified uint64 // of those, 304s to the app's conditional request
	Misses      uint64 // eligible, but not fresh in shared memory: sent to the sidecar
	Bypassed    uint64 // not eligible for a shared-memory answer (or no mapping): sent to the sidecar
	// BypassedBy splits Bypassed by reason: "method", "body",
	// "conditional", "no_cache", "unmapped".
	BypassedBy  map[string]uint64
	ServedBytes uint64 // body bytes of the responses answered from shared memory
	Cache       shm.ReadStats
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	s := Stats{
		Hits: c.hits.Load(), NotModified: c.notModified.Load(), Misses: c.misses.Load(),
		ServedBytes: c.served.Load(), BypassedBy: make(map[string]uint64, bypassReasons-1),
	}
	for r := eligibleOK + 1; r < bypassReasons; r++ {
		n := c.bypass[r].Load()
		s.Bypassed += n
		s.BypassedBy[bypassNames[r]] = n
	}
	if c.r != nil {
		s.Cache = c.r.Stats()
	}
	return s
}

// Healthy reports whether hits are being served from the mapping (the
// sidecar's heartbeat is recent); false without a mapping.
func (c *Client) Healthy() bool { return c.r != nil && c.r.Healthy(time.Now().UnixMilli()) }

// Close unmaps the cache and closes the invalidation log. The transport
// keeps working, through the sidecar.
func (c *Client) Close() error {
	c.counters.stop(c)
	c.logMu.Lock()
	if c.log != nil {
		c.log.Close()
		c.log = nil
	}
	c.logMu.Unlock()
	if c.r == nil {
		return nil
	}
	return c.r.Close()
}
