package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher reloads a config file when it changes.
//
// It watches the file's directory rather than the file, because editors and
// Kubernetes replace files instead of writing them in place: a ConfigMap
// volume holds "zerohop.yaml -> ..data/zerohop.yaml" and "..data ->
// ..2026_11_22_10_00_00.123", and an update atomically renames a new
// "..data" symlink into place. Events for the file or for "..data" start a
// debounce timer; when it fires the file is loaded again from its path,
// following the new symlinks. If the path is a symlink into another
// directory, that directory is watched too, re-resolved after each reload.
//
// If fsnotify cannot be used (no inotify instances left, an unsupported
// file system) or the directory disappears, the Watcher falls back to
// polling: it stats the file every PollInterval and reloads when its
// identity (device and inode), size or modification time change.
//
// A version that fails to load or validate goes to OnError and the
// previous config stays current: nothing is sent to OnChange. A version
// equal to the current one (say, only comments changed) is not sent either.
// Callbacks run one at a time on the goroutine that called Run.
type Watcher struct {
	// Path of the config file. Required.
	Path string
	// Current is the config the caller is serving, as returned by Load
	// (before any overrides). Run reloads once at start and reports a
	// difference, so a change made between the caller's Load and Run is
	// not lost. If nil, the first load at start is taken as current
	// without calling OnChange.
	Current *Config
	// OnChange receives each new valid config. Required. The Watcher
	// keeps its own copy, so the callee may modify the config it gets.
	OnChange func(*Config)
	// OnError receives load and validation errors, and problems with
	// watching itself (such as falling back to polling). None of them
	// stop the Watcher. Optional.
	OnError func(error)
	// Debounce is how long to wait after the last event of a burst before
	// reloading. Default 100ms.
	Debounce time.Duration
	// PollInterval is the polling period when fsnotify is not used.
	// Default 5s.
	PollInterval time.Duration
	// Poll forces polling instead of fsnotify.
	Poll bool

	afterReload func() // test hook: a reload finished, whatever its outcome
}

// Run watches until ctx is done, then returns nil. It returns an error
// only if the Watcher is misconfigured.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Path == "" || w.OnChange == nil {
		return errors.New("config: Watcher needs Path and OnChange")
	}
	abs, err := filepath.Abs(w.Path)
	if err != nil {
		return fmt.Errorf("config: watch %s: %w", w.Path, err)
	}
	s := &watchState{w: w, abs: abs, cur: w.Current.Clone()}
	if !w.Poll {
		fw, err := newDirWatch(abs)
		if err == nil {
			s.start()
			return s.events(ctx, fw)
		}
		s.report(fmt.Errorf("config: cannot watch %s with fsnotify (%w); polling every %v instead", w.Path, err, s.pollInterval()))
	}
	return s.poll(ctx, false)
}

type watchState struct {
	w   *Watcher
	abs string  // absolute Path, for watching; Path is used for loading so errors name it as the user did
	cur *Config // what the caller serves; nil if nothing valid was seen yet
}

func (s *watchState) debounce() time.Duration {
	if s.w.Debounce > 0 {
		return s.w.Debounce
	}
	return 100 * time.Millisecond
}

func (s *watchState) pollInterval() time.Duration {
	if s.w.PollInterval > 0 {
		return s.w.PollInterval
	}
	return 5 * time.Second
}

func (s *watchState) report(err error) {
	if s.w.OnError != nil {
		s.w.OnError(err)
	}
}

// start establishes the baseline once the watch is armed, so no change can
// slip between the two.
func (s *watchState) start() {
	if s.cur != nil {
		s.reload()
		return
	}
	cfg, err := Load(s.w.Path)
	if err != nil {
		s.report(err)
		return
	}
	s.cur = cfg
}

func (s *watchState) reload() {
	if s.w.afterReload != nil {
		defer s.w.afterReload()
	}
	cfg, err := Load(s.w.Path)
	if err != nil {
		s.report(err)
		return
	}
	if s.cur != nil && reflect.DeepEqual(cfg, s.cur) {
		return
	}
	s.cur = cfg.Clone()
	s.w.OnChange(cfg)
}

// events is the fsnotify loop; it owns and closes fw.
func (s *watchState) events(ctx context.Context, fw *dirWatch) error {
	defer fw.close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.w.Events:
			switch {
			case !ok:
				return s.fallback(ctx, fw, errors.New("fsnotify closed its event channel"))
			case fw.dirGone(ev):
				return s.fallback(ctx, fw, fmt.Errorf("directory %s was removed", fw.dir))
			case fw.relevant(ev):
				timer.Reset(s.debounce()) // Go ≥1.23 timers: Reset never delivers a stale tick
			}
		case err, ok := <-fw.w.Errors:
			switch {
			case !ok:
				return s.fallback(ctx, fw, errors.New("fsnotify closed its error channel"))
			case errors.Is(err, fsnotify.ErrEventOverflow):
				timer.Reset(s.debounce()) // events were lost; one of them may have been ours
			default:
				s.report(fmt.Errorf("config: watch %s: %w", s.w.Path, err))
			}
		case <-timer.C:
			s.reload()
			fw.follow()
		}
	}
}

func (s *watchState) fallback(ctx context.Context, fw *dirWatch, why error) error {
	fw.close()
	s.report(fmt.Errorf("config: stopped watching %s with fsnotify (%w); polling every %v instead", s.w.Path, why, s.pollInterval()))
	return s.poll(ctx, true)
}

// poll is the stat loop. If changed, a change has already been seen and
// is reloaded first.
func (s *watchState) poll(ctx context.Context, changed bool) error {
	prev := statFile(s.abs)
	if !changed {
		s.start()
	}
	tick := time.NewTicker(s.pollInterval())
	defer tick.Stop()
	for {
		if changed {
			// Let a writer that is not atomic finish, as the debounce does.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(s.debounce()):
			}
			prev = statFile(s.abs)
			s.reload()
			changed = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			changed = !statFile(s.abs).same(prev)
		}
	}
}

// fileState is what polling compares: identity, size and mtime.
type fileState struct{ fi os.FileInfo }

func statFile(path string) fileState {
	fi, err := os.Stat(path) // follows symlinks: a ConfigMap swap changes the inode
	if err != nil {
		return fileState{}
	}
	return fileState{fi}
}

func (a fileState) same(b fileState) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == nil && b.fi == nil
	}
	return os.SameFile(a.fi, b.fi) && a.fi.Size() == b.fi.Size() && a.fi.ModTime().Equal(b.fi.ModTime())
}

// dataLink is the symlink Kubernetes swaps on a ConfigMap update.
const dataLink = "..data"

// dirWatch is an fsnotify watch on the file's directory and, if the file
// is a symlink elsewhere, on its target's directory.
type dirWatch struct {
	w       *fsnotify.Watcher
	path    string // absolute, cleaned
	dir     string
	base    string
	real    string // path with symlinks resolved; "" if it does not resolve
	realDir string // watched in addition to dir; "" if none
	closed  bool
}

func newDirWatch(path string) (*dirWatch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	fw := &dirWatch{w: w, path: path, dir: filepath.Dir(path), base: filepath.Base(path)}
	if err := w.Add(fw.dir); err != nil {
		w.Close()
		return nil, err
	}
	fw.follow()
	return fw, nil
}

// follow re-resolves the symlink chain and moves the extra watch to the
// target's directory. Failures only lose the extra watch: the directory
// watch still sees "..data" swaps and replacements of the file itself.
func (fw *dirWatch) follow() {
	real, err := filepath.EvalSymlinks(fw.path)
	if err != nil {
		real = ""
	}
	fw.real = real
	realDir := ""
	if real != "" && filepath.Dir(real) != fw.dir {
		realDir = filepath.Dir(real)
	}
	if realDir == fw.realDir {
		return
	}
	if fw.realDir != "" {
		_ = fw.w.Remove(fw.realDir) // may already be gone with its directory
	}
	fw.realDir = ""
	if realDir != "" && fw.w.Add(realDir) == nil {
		fw.realDir = realDir
	}
}

// relevant reports whether ev may have changed what path resolves to.
func (fw *dirWatch) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod { // chmod alone does not change content
		return false
	}
	name := filepath.Clean(ev.Name)
	if filepath.Dir(name) == fw.dir {
		b := filepath.Base(name)
		return b == fw.base || b == dataLink
	}
	return name == fw.real
}

func (fw *dirWatch) dirGone(ev fsnotify.Event) bool {
	return filepath.Clean(ev.Name) == fw.dir && ev.Has(fsnotify.Remove|fsnotify.Rename)
}

// close is idempotent: the fallback path closes before the deferred close.
func (fw *dirWatch) close() {
	if !fw.closed {
		fw.closed = true
		_ = fw.w.Close()
	}
}
