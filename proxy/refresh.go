// Background refresh: stale-while-revalidate (RFC 5861 §3) revalidates
// a stale entry once, off the request.

package proxy

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/zerohop/zerohop/proxy/httpcache"
	"github.com/zerohop/zerohop/proxy/internal/flight"
	"github.com/zerohop/zerohop/shm"
)

// refreshInBackground revalidates a stale entry once, for
// stale-while-revalidate (RFC 5861 §3), unless a fetch is already running.
func (p *Proxy) refreshInBackground(x *exchange, e *shm.Entry) {
	f, leader := p.flights.Join(x.primary, new(flight.Call))
	if !leader {
		return
	}
	owned := e.Clone() // e lives in the request's buffer, released when it ends
	y := &exchange{p: p, st: x.st, lis: x.lis, guard: x.guard, dst: x.dst, route: x.route, chain: x.chain, consumer: x.consumer, cluster: x.cluster,
		reqID: x.reqID + "-bg", start: p.opts.Now(), scheme: x.scheme, host: x.host, target: x.target,
		cacheable: true, primary: bytes.Clone(x.primary), primaryIsIdx: x.primaryIsIdx, primaryVary: x.primaryVary,
		stored: &owned, storedHdr: headerOf(e), refresh: true}
	y.revalidating = hasValidators(y.storedHdr)
	y.status.Fwd = httpcache.FwdStale
	ctx, cancel := context.WithTimeout(p.bgCtx, time.Minute)
	req := x.in.Clone(context.WithValue(ctx, ctxKey{}, y))
	req.Method, req.Body, req.ContentLength = http.MethodGet, http.NoBody, 0
	// The refresh is the cache's own request: the triggering client's
	// conditionals, range and cache directives would get an answer the
	// cache cannot store (a 304 without stored validators, a 206, a
	// no-store).
	for _, f := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since",
		"If-Range", "Range", "Cache-Control", "Pragma"} {
		req.Header.Del(f)
	}
	y.in = req
	p.m.refreshes.Inc()
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		defer cancel()
		defer p.flights.Finish(f)
		p.rp.ServeHTTP(discard{h: http.Header{}}, req)
	}()
}

// discard is the ResponseWriter of a background revalidation.
type discard struct{ h http.Header }

func (d discard) Header() http.Header { return d.h }

func (d discard) Write(b []byte) (int, error) { return len(b), nil }

func (d discard) WriteHeader(int) {}
