package filewatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestWatch: an in-place rewrite, a rename over the file and a Kubernetes
// "..data" symlink swap each deliver the new bytes; a Load error is
// reported and the next change is still seen; an unchanged file is not
// delivered again.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A Secret-style volume: f -> ..data/f, ..data -> ..v1.
	must(os.Mkdir(filepath.Join(dir, "..v1"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "..v1", "f"), []byte("v1"), 0o600))
	must(os.Symlink("..v1", filepath.Join(dir, "..data")))
	must(os.Symlink(filepath.Join("..data", "f"), filepath.Join(dir, "f")))
	plain := filepath.Join(dir, "plain")
	must(os.WriteFile(plain, []byte("p1"), 0o600))

	var mu sync.Mutex
	var got []string
	var errs []error
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range []string{filepath.Join(dir, "f"), plain} {
		first, _ := os.ReadFile(p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			Watch(ctx, Options{Path: p, PollInterval: time.Hour, Load: func(b []byte) error {
				mu.Lock()
				defer mu.Unlock()
				if string(b) == "bad" {
					return errors.New("bad content")
				}
				got = append(got, string(b))
				return nil
			}, OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }}, first)
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(100 * time.Millisecond) // the watches are armed
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			last := ""
			if n := len(got); n > 0 {
				last = got[n-1]
			}
			mu.Unlock()
			if last == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("never got %q (got %q)", want, last)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	must(os.WriteFile(plain, []byte("p2"), 0o600)) // in place
	wait("p2")
	must(os.WriteFile(plain+".tmp", []byte("p3"), 0o600)) // renamed over
	must(os.Rename(plain+".tmp", plain))
	wait("p3")
	// The Secret swap.
	must(os.Mkdir(filepath.Join(dir, "..v2"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "..v2", "f"), []byte("v2"), 0o600))
	must(os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	must(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	wait("v2")
	must(os.WriteFile(plain, []byte("bad"), 0o600))
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(errs)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Load error was not reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	must(os.WriteFile(plain, []byte("p4"), 0o600))
	wait("p4")
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Errorf("%q delivered twice in a row: %q", got[i], got)
		}
	}
}

// TestWatchPolls: without file events (here: a debounce that never
// fires), the byte comparison every PollInterval sees a change.
func TestWatchPolls(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, Options{Path: p, PollInterval: 20 * time.Millisecond, Debounce: time.Hour,
			Load: func(b []byte) error { got <- string(b); return nil }}, []byte("a"))
	}()
	defer func() { cancel(); <-done }()
	if err := os.WriteFile(p, []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "b" {
			t.Errorf("got %q; want b", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the poll never saw the change")
	}
}
