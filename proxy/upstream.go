package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	"github.com/zerohop/zerohop/proxy/httpcache"
	"github.com/zerohop/zerohop/proxy/internal/h1"
)

// rewrite builds the upstream request (httputil.ReverseProxy.Rewrite):
// hop-by-hop fields are already gone; the app's headers go through.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	x := exchangeFrom(pr.In.Context())
	if x.cluster != nil {
		ep := x.cluster.pick(x)
		pr.SetURL(ep.url)
		if ep.hostHeader != "" {
			pr.Out.Host = ep.hostHeader // an address dns_refresh resolved: the name
		}
		if x.route != nil && x.route.rewrite != nil {
			x.route.rewrite.apply(pr) // after: the route's Host wins
		}
		x.upstream = ep.label
	} else if x.dst.IsValid() {
		// Transparent mode, no route: the address the app dialled, with
		// the Host it sent.
		pr.Out.URL.Scheme, pr.Out.URL.Host = "http", x.dst.String()
		pr.Out.Host = x.host
		x.upstream = x.dst.String()
	} else {
		// Forward mode, no route: the absolute URL the app asked for.
		pr.Out.Host = pr.In.URL.Host
		x.upstream = pr.In.URL.Host
	}
	var vals []string
	if !x.fwdUsed { // a second upstream request of x makes its own
		vals, x.fwdUsed = x.fwdV[:], true
	}
	setForwarded(pr.Out.Header, pr.In, vals)
	pr.Out.Header["X-Request-Id"] = x.reqIDField()
	p.traceUpstream(x, pr.Out.Header)
	if x.revalidating {
		// Our validators replace the app's: the answer updates the stored
		// response, and the app's own conditional is then evaluated
		// against it (RFC 9111 §4.3.1, §4.3.2).
		for _, f := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
			pr.Out.Header.Del(f)
		}
		validators := x.storedHdr
		if up := string(x.stored.ETag); up != "" && up != validators.Get("Etag") {
			// The stored representation is one the proxy encoded, with an
			// ETag of its own (see compress): validate with the upstream's.
			validators = validators.Clone()
			validators.Set("Etag", up)
		}
		httpcache.AddValidators(pr.Out.Header, validators)
	}
	if len(x.chain) > 0 {
		// The upstream phase: after the cache decision, on what goes
		// upstream only (a background refresh's request too).
		x.chain.onUpstream(x, headerFields(pr.Out.Header))
	}
	x.reqTime = p.opts.Now()
}

// viaValue is this hop's Via element (RFC 9110 §7.6.3): the protocol
// version it received, and the pseudonym "zerohop".
func viaValue(major, minor int) string {
	switch {
	case major == 1 && minor == 1:
		return "1.1 zerohop"
	case major == 1 && minor == 0:
		return "1.0 zerohop"
	case major == 2:
		return "2 zerohop"
	case major > 2:
		return strconv.Itoa(major) + " zerohop"
	}
	return strconv.Itoa(major) + "." + strconv.Itoa(minor) + " zerohop"
}

// setForwarded sets the fields that tell the upstream about this hop:
// X-Forwarded-For/-Host/-Proto as httputil.ProxyRequest.SetXForwarded
// sets them, an RFC 7239 Forwarded element, and Via. Their values share
// one backing array, vals (five long) or, if nil, a new one.
func setForwarded(h http.Header, in *http.Request, vals []string) {
	if vals == nil {
		vals = make([]string, 5)
	}
	set := func(i int, name, v string) {
		vals[i] = v
		h[name] = vals[i : i+1 : i+1]
	}
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	ip, _, err := net.SplitHostPort(in.RemoteAddr)
	if err == nil {
		xff := ip
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			xff = strings.Join(prior, ", ") + ", " + ip
		}
		set(0, "X-Forwarded-For", xff)
	} else {
		delete(h, "X-Forwarded-For")
	}
	set(1, "X-Forwarded-Host", in.Host)
	set(2, "X-Forwarded-Proto", proto)
	if err == nil {
		set(3, "Forwarded", forwardedElement(h.Get("Forwarded"), ip, proto, in.Host))
	}
	via := viaValue(in.ProtoMajor, in.ProtoMinor)
	if prior := h["Via"]; len(prior) > 0 {
		h["Via"] = append(prior, via)
	} else {
		set(4, "Via", via)
	}
}

// forwardedElement appends this hop's RFC 7239 element to prior.
func forwardedElement(prior, ip, proto, host string) string {
	var buf [128]byte
	b := buf[:0]
	if prior != "" {
		b = append(append(b, prior...), ", "...)
	}
	b = append(b, "for="...)
	if strings.Contains(ip, ":") {
		b = append(append(append(b, `"[`...), ip...), `]"`...)
	} else {
		b = append(b, ip...)
	}
	b = append(append(b, ";proto="...), proto...)
	if host != "" && !strings.ContainsAny(host, "\";,") {
		b = append(append(append(b, `;host="`...), host...), '"')
	}
	return string(b)
}

// modifyResponse runs on every upstream response before it is copied to
// the app (httputil.ReverseProxy.ModifyResponse).
func (p *Proxy) modifyResponse(resp *http.Response) error {
	x := exchangeFrom(resp.Request.Context())
	x.observeUpstream(resp.StatusCode, nil)
	x.respTime = p.opts.Now()
	x.upstreamMs = float64(x.respTime.Sub(x.reqTime).Microseconds()) / 1000
	x.status.FwdStatus = resp.StatusCode
	x.targetResponse(resp.Header) // RFC 9213: before anything reads or keeps the fields
	if x.cluster != nil && x.cluster.cred != nil {
		x.cluster.cred.stripEcho(resp.Header) // before it is stored or forwarded
	}
	if via := resp.Header["Via"]; len(via) > 0 || x.viaV[0] != "" {
		resp.Header["Via"] = append(via, viaValue(resp.ProtoMajor, resp.ProtoMinor))
	} else {
		x.viaV[0] = viaValue(resp.ProtoMajor, resp.ProtoMinor)
		resp.Header["Via"] = x.viaV[:]
	}
	// The app's response carries the proxy's X-Request-Id once: drop an
	// upstream echo, and restore it in case a forwarded 1xx (103 Early
	// Hints) cleared the writer's header map.
	resp.Header.Del("X-Request-Id")
	if x.outHdr != nil {
		x.outHdr["X-Request-Id"] = x.reqIDField()
	}

	if isUnsafe(x.in.Method) {
		p.invalidateAfterUnsafe(x, resp)
	}
	if x.revalidating {
		if done := p.revalidated(x, resp); done {
			return nil
		}
	} else if x.stored != nil && httpcache.IsUpstreamError(resp.StatusCode) && p.staleOnError(x) {
		// RFC 5861 §4: the upstream answered with an error; serve stale.
		resp.Body.Close()
		p.replaceWithStored(x, resp, "stale-if-error")
		return nil
	}
	if x.cacheable {
		p.prepareStore(x, resp)
	}
	p.compress(x, resp)
	if x.cacheable {
		p.teeStore(x, resp)
	}
	if len(resp.Header["Cache-Status"]) == 0 && x.cacheV[0] == "" {
		x.cacheV[0] = x.status.String()
		resp.Header["Cache-Status"] = x.cacheV[:]
	} else {
		httpcache.AppendCacheStatus(resp.Header, x.status)
	}
	return nil
}

// errorHandler answers when the upstream could not be reached or failed
// mid-exchange (httputil.ReverseProxy.ErrorHandler).
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	x.observeUpstream(0, err)
	x.noteUpstreamFailure(err, context.Cause(r.Context()) == errUpstreamTimeout)
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil && context.Cause(r.Context()) != errUpstreamTimeout {
		return // the app went away; nobody to answer
	}
	if be := (*breakerError)(nil); errors.As(err, &be) {
		p.breakerOpen(w, x, be.limit) // a breaker limit refused a try (breaker.go)
		return
	}
	if ref := (*refusal)(nil); errors.As(err, &ref) {
		// The dialer refused the address a name resolved to.
		p.refuse(w, x, ref)
		return
	}
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		p.fail(w, x, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	if x.stored != nil && p.staleOnError(x) {
		p.serveEntry(w, r, x, x.stored, "stale-if-error")
		return
	}
	code := http.StatusBadGateway
	msg := "upstream unavailable"
	var ne net.Error
	switch {
	case errors.Is(err, h1.ErrTooManyInterim):
		msg = "upstream sent too many interim (1xx) responses"
	case tlsFailure(err) != "":
		msg = tlsFailure(err)
	case errors.Is(err, context.DeadlineExceeded) || context.Cause(r.Context()) == errUpstreamTimeout || (errors.As(err, &ne) && ne.Timeout()):
		code, msg = http.StatusGatewayTimeout, "upstream timed out"
	case x.stored != nil && toHTTPEntry(x.stored).MustRevalidate:
		// RFC 9111 §5.2.2.2: disconnected, a must-revalidate response is
		// not reused and the generated error SHOULD be 504.
		code, msg = http.StatusGatewayTimeout, "upstream unreachable; the stored response must be revalidated"
	}
	if x.status.Fwd == "" {
		x.status.Fwd = httpcache.FwdMiss
	}
	x.status.Detail = "upstream-error"
	p.log.Warn("upstream error", "request_id", x.reqID, "upstream", x.upstream, "err", err)
	p.m.upstreamErrors.WithLabelValues(clusterName(x)).Inc()
	p.fail(w, x, code, msg)
}

func clusterName(x *exchange) string {
	if x.cluster != nil {
		return x.cluster.name
	}
	return "egress"
}
