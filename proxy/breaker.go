package proxy

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/zerohop/zerohop/config"
)

// limits are a cluster's circuit breakers (config.CircuitBreakers) and
// the counters they are checked against. A cluster kept across a reload
// keeps its counters; a changed one starts afresh while requests on the
// old one finish against the old.
type limits struct {
	maxConns, maxPending, maxRequests, maxRetries int64
	budgetPct                                     float64
	minRetries                                    int64

	active  atomic.Int64  // requests in flight (serveUpstream to the end of the response)
	retries atomic.Int64  // retries in flight
	pending atomic.Int64  // tries waiting for a connection slot
	slots   chan struct{} // exchanges in progress, when maxConns > 0

	retry *retryPolicy // the cluster's retry policy; nil: none
}

// Breaker limits, as they appear in the reason field and the metric.
const (
	limitRequests = "max_requests"
	limitPending  = "max_pending_requests"
)

// reasonField is the response field naming why the proxy itself answered
// 503 without asking the upstream.
const reasonField = "X-Zerohop-Reason"

func newLimits(cc config.Cluster) *limits {
	b := cc.CircuitBreakers
	l := &limits{maxConns: int64(b.MaxConnections), maxPending: int64(b.MaxPendingRequests),
		maxRequests: int64(b.MaxRequests), maxRetries: int64(b.MaxRetries),
		budgetPct: config.DefaultRetryBudgetPercent, minRetries: config.DefaultRetryBudgetMinActive}
	if rb := b.RetryBudget; rb != nil {
		l.budgetPct, l.minRetries = rb.BudgetPercent, int64(rb.MinRetryConcurrency)
	}
	if l.maxConns > 0 {
		l.slots = make(chan struct{}, l.maxConns)
	}
	if cc.Retries != nil {
		l.retry = compileRetry(cc.Retries)
	}
	return l
}

// admit counts a request in flight, unless max_requests is reached. The
// caller calls done when the request ends, if admitted.
func (l *limits) admit() bool {
	n := l.active.Add(1)
	if l.maxRequests > 0 && n > l.maxRequests {
		l.active.Add(-1)
		return false
	}
	return true
}

func (l *limits) done() { l.active.Add(-1) }

// acquireSlot takes a connection slot for one try, waiting as a pending
// request when max_connections is reached. It returns the limit that
// refused it, or "" when it got one (or there is no limit).
func (l *limits) acquireSlot(ctx context.Context) (refused string, err error) {
	if l.slots == nil {
		return "", nil
	}
	select {
	case l.slots <- struct{}{}:
		return "", nil
	default:
	}
	n := l.pending.Add(1)
	defer l.pending.Add(-1)
	if l.maxPending > 0 && n > l.maxPending {
		return limitPending, nil
	}
	select {
	case l.slots <- struct{}{}:
		return "", nil
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

func (l *limits) releaseSlot() {
	if l.slots != nil {
		<-l.slots
	}
}

// allowRetry takes a retry slot when the budget and max_retries allow
// one more retry in flight. It returns the outcome label when not.
func (l *limits) allowRetry() (refused string) {
	n := l.retries.Add(1)
	budget := int64(float64(l.active.Load()) * l.budgetPct / 100)
	budget = max(budget, l.minRetries)
	switch {
	case n > budget:
		refused = "budget"
	case l.maxRetries > 0 && n > l.maxRetries:
		refused = "overflow"
	default:
		return ""
	}
	l.retries.Add(-1)
	return refused
}

func (l *limits) retryDone() { l.retries.Add(-1) }

// breakerError is a try refused by a breaker limit; errorHandler answers
// it with 503.
type breakerError struct{ limit string }

func (e *breakerError) Error() string { return "proxy: circuit breaker open: " + e.limit }

// breakerOpen answers a request a breaker limit refused: 503 at once,
// with the limit in the reason field, logged and counted.
func (p *Proxy) breakerOpen(w http.ResponseWriter, x *exchange, limit string) {
	x.decisions |= decBreakerOpen
	p.m.res.breakerRejections.WithLabelValues(clusterName(x), limit).Inc()
	w.Header().Set(reasonField, "breaker_open; limit="+limit)
	p.fail(w, x, http.StatusServiceUnavailable, "circuit breaker open ("+limit+")")
}

// slotBody releases a try's connection slot (and its per-try context)
// when the response body is closed.
type slotBody struct {
	io.ReadCloser
	lim    *limits
	cancel context.CancelCauseFunc // nil: no per-try context
	done   atomic.Bool
}

func (b *slotBody) Close() error {
	err := b.ReadCloser.Close()
	if b.done.CompareAndSwap(false, true) {
		releaseTry(b.lim, b.cancel)
	}
	return err
}

// releaseTry gives back what a try held: its connection slot and its
// per-try context.
func releaseTry(l *limits, cancel context.CancelCauseFunc) {
	l.releaseSlot()
	if cancel != nil {
		cancel(context.Canceled)
	}
}
