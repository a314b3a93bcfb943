package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitFor bounds every wait in these tests, so a failure cannot hang.
const waitFor = 5 * time.Second

// configWithCache returns a valid config file whose cache.size is size.
func configWithCache(size string) string {
	return "cache:\n  size: " + size + "\n"
}

type watchRun struct {
	changes chan *Config
	errs    chan error
	reloads chan struct{}
}

// startWatch runs w until the test ends, returning once Run has started.
// Callbacks feed channels. w.Current defaults to the file as loaded now.
func startWatch(t *testing.T, w *Watcher) *watchRun {
	t.Helper()
	r := &watchRun{changes: make(chan *Config, 16), errs: make(chan error, 16), reloads: make(chan struct{}, 16)}
	w.OnChange = func(c *Config) { r.changes <- c }
	w.OnError = func(err error) { r.errs <- err }
	w.afterReload = func() { r.reloads <- struct{}{} }
	if w.Debounce == 0 {
		w.Debounce = 20 * time.Millisecond
	}
	if w.Current == nil {
		c, err := Load(w.Path)
		if err != nil {
			t.Fatal(err)
		}
		w.Current = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	// Run reloads once at start, after arming its watch: from then on,
	// every write must be seen.
	select {
	case <-r.reloads:
	case <-time.After(waitFor):
		t.Fatal("Run did not start within", waitFor)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel", err)
			}
		case <-time.After(waitFor):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

func (r *watchRun) change(t *testing.T) *Config {
	t.Helper()
	for {
		select {
		case c := <-r.changes:
			return c
		case err := <-r.errs:
			t.Fatalf("OnError(%v) while waiting for OnChange", err)
		case <-r.reloads:
		case <-time.After(waitFor):
			t.Fatal("no OnChange within", waitFor)
		}
	}
}

func (r *watchRun) error(t *testing.T) error {
	t.Helper()
	for {
		select {
		case c := <-r.changes:
			t.Fatalf("OnChange(cache.size=%v) while waiting for OnError", c.Cache.Size)
		case err := <-r.errs:
			return err
		case <-r.reloads:
		case <-time.After(waitFor):
			t.Fatal("no OnError within", waitFor)
		}
	}
}

// quietReload waits for a reload that changes nothing.
func (r *watchRun) quietReload(t *testing.T) {
	t.Helper()
	select {
	case c := <-r.changes:
		t.Fatalf("unexpected OnChange(cache.size=%v)", c.Cache.Size)
	case err := <-r.errs:
		t.Fatalf("unexpected OnError(%v)", err)
	case <-r.reloads:
	case <-time.After(waitFor):
		t.Fatal("no reload within", waitFor)
	}
}

// replaceFile writes content next to path and renames it over path, the
// way editors and config management tools do.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchRewrite(t *testing.T) {
	for _, mode := range []string{"fsnotify", "poll"} {
		t.Run(mode, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), configWithCache("64MiB"))
			r := startWatch(t, &Watcher{Path: path, Poll: mode == "poll", PollInterval: 10 * time.Millisecond})

			// Written in place.
			if err := os.WriteFile(path, []byte(configWithCache("128MiB")), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := r.change(t).Cache.Size; got != 128*MiB {
				t.Fatalf("cache.size = %v, want 128MiB", got)
			}

			// Replaced by rename.
			replaceFile(t, path, configWithCache("256MiB"))
			if got := r.change(t).Cache.Size; got != 256*MiB {
				t.Fatalf("cache.size = %v, want 256MiB", got)
			}
		})
	}
}

func TestWatchBadThenGoodContent(t *testing.T) {
	for _, mode := range []string{"fsnotify", "poll"} {
		t.Run(mode, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), configWithCache("64MiB"))
			r := startWatch(t, &Watcher{Path: path, Poll: mode == "poll", PollInterval: 10 * time.Millisecond})

			replaceFile(t, path, "cache:\n  size: 64MB\n")
			err := r.error(t)
			if !strings.Contains(err.Error(), "zerohop.yaml:2: cache.size: ambiguous unit") {
				t.Errorf("OnError(%v): want the file:line: field: message form", err)
			}

			// Back to what is being served: still no change to report.
			replaceFile(t, path, "# same config, new comment\n"+configWithCache("64MiB"))
			r.quietReload(t)

			replaceFile(t, path, configWithCache("32MiB"))
			if got := r.change(t).Cache.Size; got != 32*MiB {
				t.Fatalf("cache.size = %v, want 32MiB", got)
			}
		})
	}
}

func TestWatchIdenticalContent(t *testing.T) {
	path := writeConfig(t, t.TempDir(), configWithCache("64MiB"))
	r := startWatch(t, &Watcher{Path: path})
	for range 3 {
		replaceFile(t, path, configWithCache("64MiB"))
		r.quietReload(t)
	}
}

// TestWatchConfigMapSwap reproduces how the kubelet updates a ConfigMap
// volume: the file is a symlink through "..data", and an update renames a
// new "..data" symlink over the old one, then deletes the old directory.
func TestWatchConfigMapSwap(t *testing.T) {
	for _, mode := range []string{"fsnotify", "poll"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			publish := func(version, content string) {
				ts := filepath.Join(dir, "..2026_11_22_10_00_0"+version+".000000001")
				if err := os.Mkdir(ts, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(ts, "zerohop.yaml"), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				tmp := filepath.Join(dir, "..data_tmp")
				if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
					t.Fatal(err)
				}
				old, _ := os.Readlink(filepath.Join(dir, dataLink))
				if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
					t.Fatal(err)
				}
				if old != "" {
					if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
						t.Fatal(err)
					}
				}
			}
			publish("1", configWithCache("64MiB"))
			path := filepath.Join(dir, "zerohop.yaml")
			if err := os.Symlink(filepath.Join(dataLink, "zerohop.yaml"), path); err != nil {
				t.Fatal(err)
			}
			r := startWatch(t, &Watcher{Path: path, Poll: mode == "poll", PollInterval: 10 * time.Millisecond})

			publish("2", configWithCache("128MiB"))
			if got := r.change(t).Cache.Size; got != 128*MiB {
				t.Fatalf("cache.size = %v, want 128MiB", got)
			}
			publish("3", "cache: {size: nope}\n")
			if err := r.error(t); !strings.Contains(err.Error(), "cache.size: invalid size") {
				t.Errorf("OnError(%v)", err)
			}
			publish("4", configWithCache("512MiB"))
			if got := r.change(t).Cache.Size; got != 512*MiB {
				t.Fatalf("cache.size = %v, want 512MiB", got)
			}
		})
	}
}

// TestWatchSymlinkElsewhere covers a file that is a symlink into another
// directory whose target is edited in place.
func TestWatchSymlinkElsewhere(t *testing.T) {
	target := writeConfig(t, t.TempDir(), configWithCache("64MiB"))
	path := filepath.Join(t.TempDir(), "zerohop.yaml")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	r := startWatch(t, &Watcher{Path: path})
	if err := os.WriteFile(target, []byte(configWithCache("128MiB")), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := r.change(t).Cache.Size; got != 128*MiB {
		t.Fatalf("cache.size = %v, want 128MiB", got)
	}
}

// TestWatchFallsBackToPolling starts without the directory, which
// fsnotify cannot watch; the Watcher must say so and poll instead.
func TestWatchFallsBackToPolling(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not-yet")
	path := filepath.Join(dir, "zerohop.yaml")
	r := startWatch(t, &Watcher{Path: path, Current: Default(), PollInterval: 10 * time.Millisecond})

	if err := r.error(t); !strings.Contains(err.Error(), "polling every 10ms instead") {
		t.Fatalf("first OnError(%v): want the fallback notice", err)
	}
	if err := r.error(t); !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("second OnError(%v): want the missing file", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, configWithCache("128MiB"))
	if got := r.change(t).Cache.Size; got != 128*MiB {
		t.Fatalf("cache.size = %v, want 128MiB", got)
	}
}

// TestWatchDirectoryRemoved: if the watched directory goes away, the
// Watcher switches to polling and picks the file up when it returns.
func TestWatchDirectoryRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, dir, configWithCache("64MiB"))
	r := startWatch(t, &Watcher{Path: path, PollInterval: 10 * time.Millisecond})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for {
		err := r.error(t)
		if strings.Contains(err.Error(), "polling every") {
			break
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, configWithCache("128MiB"))
	for {
		select {
		case c := <-r.changes:
			if c.Cache.Size != 128*MiB {
				t.Fatalf("cache.size = %v, want 128MiB", c.Cache.Size)
			}
			return
		case <-r.errs: // the file was missing for a while
		case <-r.reloads:
		case <-time.After(waitFor):
			t.Fatal("no OnChange within", waitFor)
		}
	}
}

// TestWatchCatchesChangeBeforeRun: a change between the caller's Load and
// Run is reported at start.
func TestWatchCatchesChangeBeforeRun(t *testing.T) {
	path := writeConfig(t, t.TempDir(), configWithCache("64MiB"))
	current, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, filepath.Dir(path), configWithCache("128MiB"))
	r := startWatch(t, &Watcher{Path: path, Current: current})
	if got := r.change(t).Cache.Size; got != 128*MiB {
		t.Fatalf("cache.size = %v, want 128MiB", got)
	}
}

func TestWatchMisuse(t *testing.T) {
	if err := (&Watcher{Path: "", OnChange: func(*Config) {}}).Run(context.Background()); err == nil {
		t.Error("Run with no path succeeded")
	}
	if err := (&Watcher{Path: "x"}).Run(context.Background()); err == nil {
		t.Error("Run without OnChange succeeded")
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
