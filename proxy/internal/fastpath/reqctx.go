package fastpath

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// RequestCtx is the context of a request the fast path serves. Like the
// context net/http gives a request, it ends (context.Canceled) when the
// handler returns. Unlike context.WithCancel's, it costs no allocation of
// its own: it lives in the exchange, makes its Done channel only when
// someone asks for it, and the upstream client watches it through
// WatchEnd rather than context.AfterFunc, which would add a context, a
// closure and a child map per request. Under open-loop load, those were
// about 5% of the sidecar's CPU per miss.
//
// Its end is the handler's return and nothing else. The fast path's
// connection context could only end when the connection closes, and
// fastConn.Close waits while a request is served. So values come from
// the connection context (which is not cancellable), and cancellation is
// the request's own.
type RequestCtx struct {
	values context.Context // the connection's: server and local address

	ended atomic.Bool
	mu    sync.Mutex
	done  chan struct{} // made when asked for
	watch func()        // WatchEnd's
	after []*func()     // AfterFunc's, for contexts derived from this one
}

// Init makes r the context of a new request whose values come from
// values (the connection's context).
func (r *RequestCtx) Init(values context.Context) { r.values = values }

func (r *RequestCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (r *RequestCtx) Value(key any) any           { return r.values.Value(key) }

func (r *RequestCtx) Err() error {
	if r.ended.Load() {
		return context.Canceled
	}
	return nil
}

func (r *RequestCtx) Done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		r.done = make(chan struct{})
		if r.ended.Load() {
			close(r.done)
		}
	}
	return r.done
}

// End ends the context, running what was registered to run then, each in
// its own goroutine as context.AfterFunc does.
func (r *RequestCtx) End() {
	r.mu.Lock()
	if r.ended.Load() {
		r.mu.Unlock()
		return
	}
	r.ended.Store(true)
	if r.done != nil {
		close(r.done)
	}
	w, after := r.watch, r.after
	r.watch, r.after = nil, nil
	r.mu.Unlock()
	if w != nil {
		go w()
	}
	for _, f := range after {
		go (*f)()
	}
}

// WatchEnd arranges for f to run, in its own goroutine, when the context
// ends: context.AfterFunc without its allocations, for one watcher at a
// time (h1's connection while it serves the request). It reports false,
// registering nothing, when the context has ended or is already
// watched; the caller then uses context.AfterFunc.
func (r *RequestCtx) WatchEnd(f func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended.Load() || r.watch != nil {
		return false
	}
	r.watch = f
	return true
}

// UnwatchEnd undoes WatchEnd. It reports false if the function has run
// or is about to, as the stop function of context.AfterFunc does.
func (r *RequestCtx) UnwatchEnd() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok := r.watch != nil
	r.watch = nil
	return ok
}

// AfterFunc is what the context package calls to tie a context derived
// from this one (a route's timeout) to its end; without it, the package
// would start a goroutine per derived context to wait on Done.
func (r *RequestCtx) AfterFunc(f func()) (stop func() bool) {
	r.mu.Lock()
	if r.ended.Load() {
		r.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	p := &f
	r.after = append(r.after, p)
	r.mu.Unlock()
	return func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		i := slices.Index(r.after, p)
		if i < 0 {
			return false
		}
		r.after = slices.Delete(r.after, i, i+1)
		return true
	}
}
