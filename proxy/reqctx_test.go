package proxy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zerohop/zerohop/proxy/internal/fastpath"
	"github.com/zerohop/zerohop/proxy/internal/h1"
)

// ended reports whether ch is closed within a second.
func ended(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(time.Second):
		return false
	}
}

func TestExchangeCtxWatchEnd(t *testing.T) {
	var _ h1.EndWatcher = (*exchangeCtx)(nil)

	x := new(exchange)
	x.fs.Ctx.Init(context.Background())
	x.ctx = exchangeCtx{&x.fs.Ctx, x}
	ran := make(chan struct{})
	if !x.ctx.WatchEnd(func() { close(ran) }) {
		t.Fatal("exchangeCtx did not pass WatchEnd on")
	}
	x.fs.Ctx.End()
	if !ended(ran) {
		t.Fatal("watcher did not run")
	}
	// Over net/http's own context there is nothing to pass on to.
	y := new(exchange)
	y.ctx = exchangeCtx{context.Background(), y}
	if y.ctx.WatchEnd(func() {}) || y.ctx.UnwatchEnd() {
		t.Fatal("exchangeCtx over a plain context claimed WatchEnd")
	}

}

// TestExchangeCtxDerived checks the contexts the proxy derives from a
// fast-path request's exchange context (a route's timeout, a cancel): they
// end with the request and keep the exchange.
func TestExchangeCtxDerived(t *testing.T) {
	r := new(fastpath.RequestCtx)
	r.Init(context.Background())
	x := new(exchange)
	x.ctx = exchangeCtx{r, x}

	tctx, tcancel := context.WithTimeoutCause(&x.ctx, time.Hour, errUpstreamTimeout)
	defer tcancel()
	cctx, ccancel := context.WithCancel(&x.ctx)
	ccancel() // ends first: its registration goes
	if !ended(cctx.Done()) {
		t.Fatal("cancelled child not done")
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
	if exchangeFrom(tctx) != x {
		t.Fatal("derived context lost the exchange")
	}
	// A context derived after the end is born done.
	late, lcancel := context.WithCancel(&x.ctx)
	defer lcancel()
	if !ended(late.Done()) {
		t.Fatal("child of an ended request not done")
	}
}
