package proxy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
)

// Outbound credentials (config.Credentials): a cluster's credential is
// added to the requests sent to it by an OnUpstream filter, after the
// cache decision, so it never reaches the cache key, a stored response or
// a hit. The value comes from a file and is swapped atomically when the
// file changes; requests read it without a lock.
//
// The responses are cached under a key partitioned by the credential's
// identity (its cache_partition, by default the cluster's name; never the
// secret): the key's scheme becomes "http;cred=<partition>", which no URL
// can have (';' and '=' are not scheme characters, RFC 3986 §3.1), so the
// app's client, which builds keys from URLs, never reads such an entry
// and asks the sidecar instead, and two partitions never share an entry.

// ErrCredential is wrapped by the errors of reading a credential file.
var ErrCredential = errors.New("proxy: credential file")

// credential is a cluster's outbound credential.
type credential struct {
	cluster   string
	cfg       config.Credentials
	field     string // canonical field name: the configured header, or Authorization
	keyScheme string // the cache key's scheme: "http;cred=<partition>", or "http" for none
	interval  int64  // ns between checks of the file
	log       *slog.Logger
	m         *credMetrics

	val     atomic.Pointer[credValue]
	checkAt atomic.Int64 // unix ns after which the next request checks the file
	mu      sync.Mutex   // one check at a time
	last    os.FileInfo  // the file as last read
	lastErr string       // the last check's failure, logged once until it changes
}

// credValue is one value of a credential.
type credValue struct {
	header string // the field value sent
	secret string // the file's value, to find echoes of it
	prev   string // the value before, whose echoes are still removed (a request sent just before a rotation)
}

// credMetrics count credential file reloads.
type credMetrics struct {
	reloads *prometheus.CounterVec
}

func (c *credMetrics) init(reg prometheus.Registerer) error {
	c.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerohop_credential_reloads_total",
		Help: "Reads of outbound credential files by cluster and result: ok (a new value in use) or error (missing, unreadable, empty or invalid; the old value stays).",
	}, []string{"cluster", "result"})
	return reg.Register(c.reloads)
}

// newCredential reads cc's credential file, if it has one. A file that
// cannot be read or holds no valid value is an error: there is no old
// value to keep.
func (p *Proxy) newCredential(cc config.Cluster) (*credential, error) {
	if cc.Credentials == nil {
		return nil, nil
	}
	cfg := *cc.Credentials
	c := &credential{cluster: cc.Name, cfg: cfg, log: p.log, m: &p.creds, field: "Authorization"}
	if cfg.Type == config.CredentialHeader {
		c.field = http.CanonicalHeaderKey(cfg.Header)
	}
	switch part := cfg.CachePartition; part {
	case "none":
		c.keyScheme = "http"
	case "":
		c.keyScheme = "http;cred=" + cc.Name
	default:
		c.keyScheme = "http;cred=" + part
	}
	d := cfg.CheckInterval
	if d <= 0 {
		d = config.DefaultCredentialCheckInterval
	}
	c.interval = int64(d)
	if err := c.reload(time.Now()); err != nil {
		return nil, fmt.Errorf("proxy: cluster %q: credentials: %w", cc.Name, err)
	}
	return c, nil
}

// current returns the value to send, checking the file first when the
// interval has passed (one request does; the others use the value in
// use meanwhile).
func (c *credential) current() *credValue {
	now := time.Now().UnixNano()
	if at := c.checkAt.Load(); now >= at && c.checkAt.CompareAndSwap(at, now+c.interval) {
		c.reload(time.Unix(0, now))
	}
	return c.val.Load()
}

// reload reads the file if it changed since it was last read. On failure
// the value in use stays; the failure is counted and logged (with the
// path and the reason, never the content).
func (c *credential) reload(now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkAt.Store(now.UnixNano() + c.interval)
	fi, err := os.Stat(c.cfg.File) // follows symbolic links: a ..data swap is a new file
	if err == nil && c.last != nil && os.SameFile(fi, c.last) && fi.ModTime().Equal(c.last.ModTime()) && fi.Size() == c.last.Size() {
		return nil
	}
	var v *credValue
	if err == nil {
		var b []byte
		if b, err = os.ReadFile(c.cfg.File); err == nil {
			v, err = parseCredential(c.cfg.Type, b)
		}
	}
	if err != nil {
		err = fmt.Errorf("%w %s: %w", ErrCredential, c.cfg.File, pathless(err))
		c.m.reloads.WithLabelValues(c.cluster, "error").Inc()
		if msg := err.Error(); msg != c.lastErr {
			c.lastErr = msg
			if c.val.Load() != nil {
				c.log.Warn("credential file unusable; the value in use stays", "cluster", c.cluster, "err", err)
			}
		}
		return err
	}
	c.last, c.lastErr = fi, ""
	if old := c.val.Load(); old != nil {
		if old.header == v.header {
			return nil // touched, same value
		}
		v.prev = old.secret
	}
	c.val.Store(v)
	c.m.reloads.WithLabelValues(c.cluster, "ok").Inc()
	c.log.Info("credential loaded", "cluster", c.cluster, "file", c.cfg.File)
	return nil
}

// pathless drops the path an fs.PathError repeats.
func pathless(err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

var (
	errCredEmpty   = errors.New("empty")
	errCredInvalid = errors.New("holds a character not allowed in a header field value (control character or newline inside the value)")
	errCredBasic   = errors.New("basic credentials must be user:password")
)

// parseCredential builds the field value from the file's content b.
// Errors never include the content.
func parseCredential(typ string, b []byte) (*credValue, error) {
	s := string(bytes.TrimSpace(b))
	if s == "" {
		return nil, errCredEmpty
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return nil, errCredInvalid
		}
	}
	switch typ {
	case config.CredentialBearer:
		return &credValue{header: "Bearer " + s, secret: s}, nil
	case config.CredentialBasic:
		if !strings.Contains(s, ":") {
			return nil, errCredBasic
		}
		return &credValue{header: "Basic " + base64.StdEncoding.EncodeToString([]byte(s)), secret: s}, nil
	}
	return &credValue{header: s, secret: s}, nil
}

// stripEcho removes from an upstream response's fields any that carries
// the credential (the field it was sent in, or one whose value contains
// it): before the response is stored or reaches the app.
func (c *credential) stripEcho(h http.Header) {
	v := c.val.Load()
	if v == nil {
		return
	}
	h.Del(c.field)
	// Values too short to tell an echo from a coincidence are not looked for.
	cur, prev := v.secret, v.prev
	if len(cur) < minEchoScan {
		cur = ""
	}
	if len(prev) < minEchoScan {
		prev = ""
	}
	if cur == "" && prev == "" {
		return
	}
	for k, vs := range h {
		for _, s := range vs {
			if cur != "" && strings.Contains(s, cur) || prev != "" && strings.Contains(s, prev) {
				delete(h, k)
				break
			}
		}
	}
}

// minEchoScan is the shortest secret whose echo in any response field is
// looked for: a shorter one would match ordinary values.
const minEchoScan = 8

// credentialFilter adds its cluster's credential to the upstream request,
// replacing a field of the same name the app sent.
type credentialFilter struct {
	passFilter
	c *credential
}

func (*credentialFilter) Name() string { return "credentials" }

func (f *credentialFilter) OnUpstream(_ request, h fields) {
	h.Set(f.c.field, f.c.current().header)
}

// credentialFilters is a route's credential filter, if its cluster has
// a credential.
func credentialFilters(c *cluster) chain {
	if c == nil || c.cred == nil {
		return nil
	}
	return chain{&credentialFilter{c: c.cred}}
}

// keyScheme is the scheme x's cache key is built with: its cluster's
// credential partition, or its own.
func (x *exchange) keyScheme() string {
	return routeKeyScheme(x.route, x.scheme)
}

// routeKeyScheme is keyScheme for a request of scheme routed to rt (nil:
// none), for both entry paths.
func routeKeyScheme(rt *route, scheme string) string {
	if rt != nil && rt.cluster != nil && rt.cluster.cred != nil {
		return rt.cluster.cred.keyScheme
	}
	return scheme
}
