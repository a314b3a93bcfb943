package fastpath

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zerohop/zerohop/proxy/internal/h1"
)

type testKey struct{}

func newTestRequestCtx() *RequestCtx {
	return &RequestCtx{values: context.WithValue(context.Background(), testKey{}, "v")}
}

// ended reports whether ch is closed within a second.
func ended(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(time.Second):
		return false
	}
}

func TestRequestCtxEnds(t *testing.T) {
	for _, tc := range []struct {
		name       string
		doneBefore bool // ask for Done before the end, or only after
	}{
		{"done asked before end", true},
		{"done asked after end", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRequestCtx()
			var done <-chan struct{}
			if tc.doneBefore {
				done = r.Done()
				select {
				case <-done:
					t.Fatal("Done closed before the end")
				default:
				}
			}
			if r.Err() != nil {
				t.Fatalf("Err before end = %v", r.Err())
			}
			r.End()
			r.End() // a second end is harmless
			if !tc.doneBefore {
				done = r.Done()
			}
			if !ended(done) {
				t.Fatal("Done not closed after end")
			}
			if !errors.Is(r.Err(), context.Canceled) {
				t.Fatalf("Err = %v, want context.Canceled", r.Err())
			}
			if c := context.Cause(r); !errors.Is(c, context.Canceled) {
				t.Fatalf("Cause = %v, want context.Canceled", c)
			}
			if v := r.Value(testKey{}); v != "v" {
				t.Fatalf("Value = %v, want the connection's", v)
			}
			if _, ok := r.Deadline(); ok {
				t.Fatal("a deadline where none was set")
			}
		})
	}
}

func TestRequestCtxWatchEnd(t *testing.T) {
	var _ h1.EndWatcher = (*RequestCtx)(nil)

	t.Run("runs at the end", func(t *testing.T) {
		r := newTestRequestCtx()
		ran := make(chan struct{})
		if !r.WatchEnd(func() { close(ran) }) {
			t.Fatal("WatchEnd refused on a fresh context")
		}
		if r.WatchEnd(func() {}) {
			t.Fatal("a second watcher accepted")
		}
		r.End()
		if !ended(ran) {
			t.Fatal("watcher did not run")
		}
		if r.UnwatchEnd() {
			t.Fatal("UnwatchEnd after the watcher ran reported true")
		}
	})
	t.Run("unwatched does not run", func(t *testing.T) {
		r := newTestRequestCtx()
		ran := make(chan struct{})
		r.WatchEnd(func() { close(ran) })
		if !r.UnwatchEnd() {
			t.Fatal("UnwatchEnd of a pending watcher reported false")
		}
		if !r.WatchEnd(func() {}) {
			t.Fatal("WatchEnd refused after UnwatchEnd")
		}
		r.UnwatchEnd()
		r.End()
		select {
		case <-ran:
			t.Fatal("unwatched function ran")
		case <-time.After(50 * time.Millisecond):
		}
	})
	t.Run("refused once ended", func(t *testing.T) {
		r := newTestRequestCtx()
		r.End()
		if r.WatchEnd(func() {}) {
			t.Fatal("WatchEnd accepted on an ended context")
		}
	})
}

// TestRequestCtxDerived checks the contexts the proxy derives from a
// request's (a route's timeout, a cancel) through RequestCtx.AfterFunc:
// they end with it, and one that ends first unregisters itself.
func TestRequestCtxDerived(t *testing.T) {
	r := newTestRequestCtx()

	tctx, tcancel := context.WithTimeoutCause(r, time.Hour, errors.New("timeout"))
	defer tcancel()
	cctx, ccancel := context.WithCancel(r)
	ccancel() // ends first: its registration goes
	if !ended(cctx.Done()) {
		t.Fatal("cancelled child not done")
	}
	r.mu.Lock()
	n := len(r.after)
	r.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d registrations after one child ended, want 1", n)
	}
	if tctx.Err() != nil {
		t.Fatal("timeout child ended early")
	}
	r.End()
	if !ended(tctx.Done()) {
		t.Fatal("timeout child did not end with the request")
	}
	if !errors.Is(tctx.Err(), context.Canceled) {
		t.Fatalf("child Err = %v, want context.Canceled", tctx.Err())
	}
	// A context derived after the end is born done.
	late, lcancel := context.WithCancel(r)
	defer lcancel()
	if !ended(late.Done()) {
		t.Fatal("child of an ended request not done")
	}
}
