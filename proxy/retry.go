package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/h1"
)

// Retries and the per-try breaker limits sit at the one point both
// forwarders go through: send, which the direct forwarder calls for its
// round trip and dispatch.RoundTrip (ReverseProxy's Transport, and
// revalidation's) calls for its. A try is a round trip up to the response
// head; the response body is not retried (it may be streaming to the
// app already).

// retryPolicy is a compiled config.RetryPolicy.
type retryPolicy struct {
	attempts             int
	connect, reset, tout bool
	statuses             [2]uint64 // bit s-500 for statuses 500..599 retried
	perTry               time.Duration
	base, max            time.Duration
	maxBody              int64
}

func compileRetry(rc *config.RetryPolicy) *retryPolicy {
	p := &retryPolicy{attempts: rc.Attempts, perTry: rc.PerTryTimeout, base: rc.BackoffBase,
		max: rc.BackoffMax, maxBody: int64(rc.MaxBody)}
	if p.base <= 0 {
		p.base = config.DefaultRetryBackoffBase
	}
	p.max = max(p.max, p.base)
	for _, c := range rc.RetryOn {
		switch c {
		case config.RetryConnectFailure:
			p.connect = true
		case config.RetryReset:
			p.reset = true
		case config.RetryTimeout:
			p.tout = true
		case config.Retry5xx:
			p.statuses = [2]uint64{^uint64(0), ^uint64(0)}
		case config.RetryGatewayError:
			p.setStatus(502)
			p.setStatus(503)
			p.setStatus(504)
		default:
			if s, err := config.ParseRetryOn(c); err == nil && s != 0 {
				p.setStatus(s)
			}
		}
	}
	return p
}

func (p *retryPolicy) setStatus(s int) { p.statuses[(s-500)/64] |= 1 << ((s - 500) % 64) }

func (p *retryPolicy) onStatus(s int) bool {
	return s >= 500 && s <= 599 && p.statuses[(s-500)/64]&(1<<((s-500)%64)) != 0
}

// backoff is the wait before retry n (1-based): full jitter over an
// exponentially growing window, capped.
func (p *retryPolicy) backoff(n int) time.Duration {
	w := p.max
	if n-1 < 20 {
		w = min(p.base<<(n-1), p.max)
	}
	return time.Duration(rand.Int64N(int64(w)) + 1)
}

// Decisions recorded for the access log (exchange.decisions).
type decision uint8

const (
	decRetried     decision = 1 << iota
	decBreakerOpen          // breaker.go
	decShadowed             // mirror.go
	decEjected              // a try's outcome ejected its endpoint (balance.go)
	numDecisions   = iota
)

// decisionNames are the log values of every set of decisions, the names
// comma-separated in bit order: made once, so that String allocates
// nothing.
var decisionNames = func() (names [1 << numDecisions]string) {
	words := [numDecisions]string{"retried", "breaker_open", "shadowed", "ejected"}
	for d := range names {
		for i, w := range words {
			if d&(1<<i) != 0 {
				if names[d] != "" {
					names[d] += ","
				}
				names[d] += w
			}
		}
	}
	return names
}()

func (d decision) String() string { return decisionNames[d&(1<<numDecisions-1)] }

// retryPolicyOf is the policy for x's request: its route's, else its
// cluster's; nil for none.
func retryPolicyOf(x *exchange) *retryPolicy {
	if x.route != nil && x.route.retry != nil {
		return x.route.retry
	}
	return x.cluster.lim.retry
}

// Per-try timeouts: the error a try that ran out of time fails with. It
// is a deadline, so errorHandler answers 504.
var errPerTryTimeout = fmt.Errorf("proxy: per-try timeout: %w", context.DeadlineExceeded)

// send makes the round trip of out, x's upstream request, through t (the
// direct forwarder's h1 pool) or, if t is nil, x's pool: once, or with
// the tries the retry policy and the cluster's limits allow.
func (p *Proxy) send(x *exchange, out *http.Request, t *h1.Transport) (*http.Response, error) {
	if x == nil || x.cluster == nil {
		return p.tryOnce(x, out, t)
	}
	pol := retryPolicyOf(x)
	if pol == nil && x.cluster.lim.slots == nil {
		x.tries = 1
		return p.tryOnce(x, out, t)
	}
	return p.sendTries(x, out, t, pol)
}

func (p *Proxy) tryOnce(x *exchange, out *http.Request, t *h1.Transport) (*http.Response, error) {
	if t != nil {
		return t.RoundTripInterim(out, x)
	}
	return p.clientFor(x).RoundTrip(out)
}

func (p *Proxy) sendTries(x *exchange, out *http.Request, t *h1.Transport, pol *retryPolicy) (*http.Response, error) {
	c, lim := x.cluster, x.cluster.lim
	retrying := pol != nil && pol.attempts > 0 && idempotent(out.Method)
	var body *replayBody
	if retrying && out.Body != nil && out.Body != http.NoBody {
		var err error
		if body, err = newReplayBody(out.Body, out.ContentLength, pol.maxBody); err != nil {
			return nil, err
		}
	}
	var failed [4]string // hosts that failed, to avoid on the next try
	req := out
	holdsRetry := false
	defer func() {
		if holdsRetry {
			lim.retryDone()
		}
	}()
	for try := 1; ; try++ {
		x.tries = try
		if body != nil {
			req.Body = body.reader()
		}
		res, err, timedOut := p.try(x, req, t, pol)
		if holdsRetry {
			lim.retryDone()
			holdsRetry = false
		}
		if !retrying || try > pol.attempts {
			return res, err
		}
		if err != nil && isBreakerError(err) {
			return res, err
		}
		why := retryCondition(pol, out, res, err, timedOut)
		if why == "" {
			return res, err
		}
		if body != nil && !body.replayable() {
			p.m.res.retryInc(c.name, "body_sent")
			return res, err
		}
		wait := pol.backoff(try)
		if res != nil {
			if ra, ok := retryAfter(res.Header.Get("Retry-After"), p.opts.Now()); ok {
				if ra > pol.max {
					p.m.res.retryInc(c.name, "retry_after")
					return res, err
				}
				wait = ra
			}
		}
		if refused := lim.allowRetry(); refused != "" {
			p.m.res.retryInc(c.name, refused)
			return res, err
		}
		holdsRetry = true
		// The failed try's outcome, for outlier detection (balance.go),
		// before the retry picks again.
		if res != nil {
			x.observeUpstream(res.StatusCode, nil)
		} else {
			x.observeUpstream(0, err)
		}
		if res != nil {
			// Read a little of the failed answer so its connection can be
			// reused, then drop it.
			io.CopyN(io.Discard, res.Body, 4<<10)
			res.Body.Close()
		}
		x.decisions |= decRetried
		p.m.res.retryInc(c.name, "retried_"+why)
		if i := try - 1; i < len(failed) {
			failed[i] = req.URL.Host
		}
		tm := time.NewTimer(wait)
		select {
		case <-tm.C:
		case <-out.Context().Done():
			tm.Stop()
			return nil, context.Cause(out.Context())
		}
		req = retryRequest(x, out, c, failed[:min(try, len(failed))])
	}
}

// try is one round trip under the cluster's connection limit and the
// per-try timeout. timedOut reports that the per-try timeout cut it.
func (p *Proxy) try(x *exchange, req *http.Request, t *h1.Transport, pol *retryPolicy) (res *http.Response, err error, timedOut bool) {
	lim := x.cluster.lim
	if refused, err := lim.acquireSlot(req.Context()); refused != "" || err != nil {
		// Not sent: nothing to say of the endpoint picked (balance.go).
		x.observeUpstream(0, errTryAbandoned)
		if refused != "" {
			return nil, &breakerError{limit: refused}, false
		}
		return nil, err, false
	}
	var cancel context.CancelCauseFunc
	var timer *time.Timer
	if pol != nil && pol.perTry > 0 {
		var ctx context.Context
		ctx, cancel = context.WithCancelCause(req.Context())
		timer = time.AfterFunc(pol.perTry, func() { cancel(errPerTryTimeout) })
		req = req.WithContext(ctx)
	}
	res, err = p.tryOnce(x, req, t)
	if timer != nil && !timer.Stop() {
		// Out of time, even if the head came as the timer fired: its
		// context is cancelled, and the body could not be read.
		if err == nil {
			res.Body.Close()
			res = nil
		}
		err, timedOut = errPerTryTimeout, true
	}
	if err != nil || res.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded connection is the app's now, not an exchange.
		releaseTry(lim, cancel)
		return res, err, timedOut
	}
	if lim.slots != nil || cancel != nil {
		res.Body = &slotBody{ReadCloser: res.Body, lim: lim, cancel: cancel}
	}
	return res, nil, false
}

// retryCondition names the retry_on condition a try's outcome meets, or
// "" when it is not to be retried.
func retryCondition(pol *retryPolicy, out *http.Request, res *http.Response, err error, timedOut bool) string {
	if err == nil {
		if pol.onStatus(res.StatusCode) {
			return "status"
		}
		return ""
	}
	if out.Context().Err() != nil {
		return "" // the app went away or the route's timeout passed
	}
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return ""
	}
	switch {
	case timedOut:
		if pol.tout {
			return "timeout"
		}
	case isConnectFailure(err):
		if pol.connect {
			return "connect_failure"
		}
	case errors.Is(err, h1.ErrTooManyInterim):
	default:
		if pol.reset {
			return "reset"
		}
	}
	return ""
}

func isBreakerError(err error) bool {
	be := (*breakerError)(nil)
	return errors.As(err, &be)
}

// isConnectFailure reports whether err is a failure to connect: nothing
// of the request was sent.
func isConnectFailure(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// idempotent methods may be sent twice (RFC 9110 §9.2.2).
func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<30)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// retryRequest is out sent again, to an endpoint of c other than the
// ones that failed when the cluster's picking offers one.
func retryRequest(x *exchange, out *http.Request, c *cluster, failed []string) *http.Request {
	ep := c.pick(x)
	for i := 0; i < 16 && len(c.endpoints) > 1 && contains(failed, ep.url.Host); i++ {
		ep = c.pick(x) // the previous pick is abandoned, judging nothing
	}
	req := new(http.Request)
	*req = *out
	u := *out.URL
	u.Scheme, u.Host = ep.url.Scheme, ep.url.Host
	req.URL = &u
	x.upstream = c.name + "/" + ep.url.Host
	return req
}

func contains(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

// replayBody keeps what was read of a request body so that it can be
// sent again: all of it when it fits in the bound, else nothing; the
// rest is read from the app as a try sends it. A try that read into the
// rest used it up, and the request cannot be sent again.
type replayBody struct {
	buf      []byte
	rest     io.Reader // nil when buf is the whole body
	restUsed bool
}

func newReplayBody(body io.Reader, length, bound int64) (*replayBody, error) {
	b := &replayBody{rest: body}
	if bound <= 0 || length > bound {
		return b, nil
	}
	n := bound + 1
	if length >= 0 {
		n = length + 1 // + 1 to see the end
	}
	buf, err := io.ReadAll(io.LimitReader(body, n))
	if err != nil {
		return nil, err
	}
	b.buf = buf
	if int64(len(buf)) <= bound && (length < 0 || int64(len(buf)) == length) {
		b.rest = nil
	}
	return b, nil
}

func (b *replayBody) replayable() bool { return b.rest == nil || !b.restUsed }

func (b *replayBody) reader() io.ReadCloser { return &replayReader{b: b} }

// replayReader is one try's view of the body. Closing it does nothing:
// a transport closes the body it was given on every failure, and the
// next try still needs the app's.
type replayReader struct {
	b   *replayBody
	off int
}

func (r *replayReader) Read(p []byte) (int, error) {
	if r.off < len(r.b.buf) {
		n := copy(p, r.b.buf[r.off:])
		r.off += n
		return n, nil
	}
	if r.b.rest == nil {
		return 0, io.EOF
	}
	r.b.restUsed = true
	return r.b.rest.Read(p)
}

func (r *replayReader) Close() error { return nil }
