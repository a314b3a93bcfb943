// Package tlsfiles loads TLS material (a certificate with its key, a CA
// bundle) from PEM files and keeps it current while the files rotate: a
// Kubernetes Secret volume swaps every file at once by flipping its
// ..data symlink, cert-manager and others rename new files into place.
// A Watcher notices through fsnotify on the files' directories, and by
// checking the files every PollInterval in case notifications are lost
// (network filesystems, a directory replaced wholesale). New material
// that does not load (a half-written file, a key that does not match its
// certificate) is refused: the old material stays in use, and the error
// is reported to OnReload until a later change loads.
//
// The TLS configurations built by the callers read the material through
// Current on every handshake (GetCertificate, GetClientCertificate,
// VerifyConnection), so connections already open keep theirs and new
// ones get the new material, without a restart.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Errors of loading, wrapped with the file's name.
var (
	// ErrNoCertificates: a CA file without a single PEM certificate.
	ErrNoCertificates = errors.New("tlsfiles: no PEM certificates")
	// ErrKeyPair: the certificate and key files do not load as a pair.
	ErrKeyPair = errors.New("tlsfiles: certificate and key do not load as a pair")
)

// DefaultPollInterval is how often a Watcher checks its files when no
// notification came.
const DefaultPollInterval = 2 * time.Second

// Files names the material to load. CertFile and KeyFile go together;
// either group may be empty.
type Files struct {
	CertFile, KeyFile string // a PEM certificate chain and its private key
	CAFile            string // a PEM bundle of CA certificates
}

func (f Files) paths() []string {
	var ps []string
	for _, p := range []string{f.CertFile, f.KeyFile, f.CAFile} {
		if p != "" {
			ps = append(ps, p)
		}
	}
	return ps
}

// Material is one loaded generation of the files. It is never changed
// once loaded.
type Material struct {
	Cert *tls.Certificate // nil without CertFile; Leaf is set
	Pool *x509.CertPool   // nil without CAFile
}

// Load reads and parses f's files.
func Load(f Files) (*Material, error) {
	m := &Material{}
	if f.CertFile != "" || f.KeyFile != "" {
		c, err := LoadKeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, err
		}
		m.Cert = c
	}
	if f.CAFile != "" {
		p, err := LoadPool(f.CAFile)
		if err != nil {
			return nil, err
		}
		m.Pool = p
	}
	return m, nil
}

// LoadKeyPair loads a certificate chain and its private key, with Leaf
// parsed.
func LoadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w (%s, %s): %v", ErrKeyPair, certFile, keyFile, err)
	}
	if c.Leaf == nil { // set by X509KeyPair since Go 1.23; parse if not
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%w (%s): %v", ErrKeyPair, certFile, err)
		}
	}
	return &c, nil
}

// LoadPool loads a PEM bundle of CA certificates. Every CERTIFICATE block
// must parse: a bundle with one bad certificate is refused rather than
// trusted in part.
func LoadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlsfiles: %s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoCertificates, file)
	}
	return pool, nil
}

// Options tune a Watcher.
type Options struct {
	// PollInterval is how often the files are checked besides fsnotify's
	// notifications. Default DefaultPollInterval.
	PollInterval time.Duration
	// OnReload is called after each attempt to load changed files: err
	// nil when the new material is in use, else why the old one stays.
	// Default none.
	OnReload func(m *Material, err error)
	// Logger receives a line per reload. Default slog.Default().
	Logger *slog.Logger
	// Name identifies the files in log lines, e.g. "cluster api".
	Name string
}

// Watcher holds the current Material of a set of files.
type Watcher struct {
	files Files
	o     Options
	cur   atomic.Pointer[Material]

	mu    sync.Mutex // serialises check
	stamp []stamp    // what the files were when last loaded or refused

	poke      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// stamp identifies a version of a file: os.Stat follows symlinks, so a
// flipped ..data link shows as another file.
type stamp struct {
	fi  os.FileInfo // nil: could not stat
	err string
}

func (s stamp) same(t stamp) bool {
	if s.fi == nil || t.fi == nil {
		return s.fi == nil && t.fi == nil && s.err == t.err
	}
	return os.SameFile(s.fi, t.fi) && s.fi.ModTime().Equal(t.fi.ModTime()) && s.fi.Size() == t.fi.Size()
}

// NewWatcher loads f and starts watching it. It fails if the files do not
// load now. Close stops it.
func NewWatcher(f Files, o Options) (*Watcher, error) {
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	w := &Watcher{files: f, o: o, poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	w.stamp = w.stamps()
	m, err := Load(f)
	if err != nil {
		return nil, err
	}
	w.cur.Store(m)
	// Directories, not files: a rename or a symlink flip replaces the
	// file, and a watch on the old one would see nothing more.
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		o.Logger.Warn("tls files: no change notifications; polling only", "name", o.Name, "err", err)
		fw = nil
	} else {
		dirs := map[string]bool{}
		for _, p := range f.paths() {
			dirs[filepath.Dir(p)] = true
			if real, err := filepath.EvalSymlinks(p); err == nil {
				dirs[filepath.Dir(real)] = true
			}
		}
		for d := range dirs {
			if err := fw.Add(d); err != nil {
				o.Logger.Warn("tls files: cannot watch directory; polling it", "name", o.Name, "dir", d, "err", err)
			}
		}
	}
	go w.run(fw)
	return w, nil
}

// Current returns the material in use.
func (w *Watcher) Current() *Material { return w.cur.Load() }

// Check looks at the files now (the watcher does so by itself; tests and
// callers that know of a change use it).
func (w *Watcher) Check() { w.check() }

// Close stops watching. Current keeps returning the last material.
func (w *Watcher) Close() {
	w.closeOnce.Do(func() { close(w.stop) })
	<-w.done
}

func (w *Watcher) run(fw *fsnotify.Watcher) {
	defer close(w.done)
	var events chan fsnotify.Event
	var errs chan error
	if fw != nil {
		defer fw.Close()
		events, errs = fw.Events, fw.Errors
	}
	tick := time.NewTicker(w.o.PollInterval)
	defer tick.Stop()
	// A notification starts a short settle delay: a Secret update or a
	// tool writing two files raises several events, and one check after
	// them loads the pair together.
	var settle <-chan time.Time
	for {
		select {
		case <-w.stop:
			return
		case <-events:
			if settle == nil {
				settle = time.After(50 * time.Millisecond)
			}
		case err := <-errs:
			w.o.Logger.Warn("tls files: change notifications failed; polling", "name", w.o.Name, "err", err)
		case <-settle:
			settle = nil
			w.check()
		case <-tick.C:
			w.check()
		}
	}
}

func (w *Watcher) stamps() []stamp {
	ps := w.files.paths()
	out := make([]stamp, len(ps))
	for i, p := range ps {
		fi, err := os.Stat(p)
		if err != nil {
			out[i] = stamp{err: err.Error()}
		} else {
			out[i] = stamp{fi: fi}
		}
	}
	return out
}

// check reloads when any file changed since the last load or refusal.
func (w *Watcher) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.stamps()
	changed := false
	for i := range now {
		if !now[i].same(w.stamp[i]) {
			changed = true
		}
	}
	if !changed {
		return
	}
	w.stamp = now
	m, err := Load(w.files)
	if err != nil {
		w.o.Logger.Error("tls files changed but do not load; keeping the previous ones", "name", w.o.Name, "err", err)
	} else {
		w.cur.Store(m)
		attrs := []any{"name", w.o.Name}
		if m.Cert != nil {
			attrs = append(attrs, "serial", m.Cert.Leaf.SerialNumber.String(), "not_after", m.Cert.Leaf.NotAfter)
		}
		w.o.Logger.Info("tls files reloaded", attrs...)
	}
	if w.o.OnReload != nil {
		w.o.OnReload(m, err)
	}
}
