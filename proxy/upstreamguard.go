package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/proxy/internal/h1"
)

// The upstream guards: what a misbehaving upstream must not be able to do
// to the app through the sidecar. h1 enforces them itself (see its
// Options); for net/http's client (client: std) stdClient adds the two
// that net/http lacks: a body idle timeout, and a cap on the 1xx
// responses relayed to the app (net/http leaves them unbounded once a
// Got1xxResponse hook, which ReverseProxy installs, takes them).

// maxInterim bounds the interim (1xx) responses an upstream may send
// before its final one, on either client.
const maxInterim = 10

// Reasons of zerohop_upstream_refusals_total.
const (
	refusedUnsolicited = "unsolicited_bytes" // an idle connection with bytes nobody asked for, closed
	refusedBodyIdle    = "body_idle_timeout" // a body stalled past body_idle_timeout; the app's response aborted
	refusedInterim     = "too_many_interim"  // more than maxInterim 1xx responses; answered 502
)

// upstreamEvents counts a pool's refusals under its cluster name ("egress"
// for forward-mode requests without a route).
type upstreamEvents struct {
	unsolicited, bodyIdle, interim prometheus.Counter
}

func newUpstreamEvents(m *metrics, cluster string) *upstreamEvents {
	return &upstreamEvents{
		unsolicited: m.upstreamRefusals.WithLabelValues(cluster, refusedUnsolicited),
		bodyIdle:    m.upstreamRefusals.WithLabelValues(cluster, refusedBodyIdle),
		interim:     m.upstreamRefusals.WithLabelValues(cluster, refusedInterim),
	}
}

// on is h1's Options.OnEvent.
func (e *upstreamEvents) on(ev h1.Event) {
	switch ev {
	case h1.EventUnsolicitedBytes:
		e.unsolicited.Inc()
	case h1.EventBodyIdleTimeout:
		e.bodyIdle.Inc()
	case h1.EventTooManyInterim:
		e.interim.Inc()
	}
}

// stdClient is net/http's Transport with the upstream guards.
type stdClient struct {
	*http.Transport
	bodyIdle time.Duration // <= 0: none
	events   *upstreamEvents
}

var (
	errStdBodyIdle = errors.New("proxy: upstream body idle timeout")
	errStdInterim  = errors.New("proxy: too many interim responses")
)

func (s *stdClient) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(r.Context())
	var tr httptrace.ClientTrace
	old := httptrace.ContextClientTrace(ctx)
	if old != nil {
		tr = *old
	}
	relay := tr.Got1xxResponse // ReverseProxy's, which writes the 1xx to the app
	exchangeFrom(ctx).traceConn(&tr)
	n := 0
	tr.Got1xxResponse = func(code int, h textproto.MIMEHeader) error {
		if n++; n > maxInterim {
			return errStdInterim // ends the round trip; this one is not relayed
		}
		if relay != nil {
			return relay(code, h)
		}
		return nil
	}
	var tctx context.Context = &traceCtx{ctx, &tr}
	if old == nil {
		tctx = httptrace.WithClientTrace(ctx, &tr)
	}
	resp, err := s.Transport.RoundTrip(r.WithContext(tctx))
	if err != nil {
		if errors.Is(err, errStdInterim) {
			s.events.interim.Inc()
			err = fmt.Errorf("%w: more than %d from %s", h1.ErrTooManyInterim, maxInterim, r.URL.Host)
		}
		cancel(nil)
		return nil, err
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		cancel(nil)
		return resp, nil
	}
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection itself, for the new protocol: no body idle
		// timeout, and ReverseProxy needs the io.ReadWriteCloser.
		resp.Body = &upgraded{rwc, cancel}
		return resp, nil
	}
	// The context must outlive the body: closing the body ends it.
	b := &idleBody{rc: resp.Body, ctx: ctx, cancel: cancel, d: s.bodyIdle, events: s.events}
	if b.d > 0 {
		b.t = time.AfterFunc(time.Hour, b.fire)
		b.t.Stop()
	}
	resp.Body = b
	return resp, nil
}

// traceCtx is a context whose client trace is trace instead of the one
// its parent carries. httptrace.WithClientTrace would compose the two,
// running both hooks and returning the parent's result, so the parent's
// Got1xxResponse would still relay what the cap refuses.
type traceCtx struct {
	context.Context
	trace *httptrace.ClientTrace
}

func (c *traceCtx) Value(key any) any {
	v := c.Context.Value(key)
	if _, ok := v.(*httptrace.ClientTrace); ok {
		return c.trace
	}
	return v
}

// idleBody is a response body whose every Read may wait at most d (if d >
// 0) for the upstream: a timer running only while a Read is blocked
// cancels the request's context. Close ends the context.
type idleBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	d      time.Duration
	t      *time.Timer
	events *upstreamEvents
	once   sync.Once
}

func (b *idleBody) fire() { b.cancel(errStdBodyIdle) }

func (b *idleBody) Read(p []byte) (int, error) {
	if b.t == nil {
		return b.rc.Read(p)
	}
	b.t.Reset(b.d)
	n, err := b.rc.Read(p)
	b.t.Stop()
	if err != nil && err != io.EOF && context.Cause(b.ctx) == errStdBodyIdle {
		b.once.Do(b.events.bodyIdle.Inc)
		err = h1.ErrBodyIdleTimeout
	}
	return n, err
}

func (b *idleBody) Close() error {
	if b.t != nil {
		b.t.Stop()
	}
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// upgraded is a 101 response's body: the switched connection, whose
// Close also ends the round trip's context.
type upgraded struct {
	io.ReadWriteCloser
	cancel context.CancelCauseFunc
}

func (u *upgraded) Close() error {
	err := u.ReadWriteCloser.Close()
	u.cancel(nil)
	return err
}
