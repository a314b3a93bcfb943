package proxy

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/httpcache"
	"github.com/zerohop/zerohop/proxy/internal/fastpath"
	"github.com/zerohop/zerohop/proxy/internal/field"
	"github.com/zerohop/zerohop/proxy/internal/timeline"
	"github.com/zerohop/zerohop/shm"
)

// serveHit answers the request in the connection's parsed head straight from the cache when it
// is the plain case: a GET or HEAD with no field that changes how a stored
// response may be used, for which a fresh response is stored. It writes
// what the general path (serveCached, serveEntry) would have written,
// without building an http.Request or a header map. It reports whether it
// answered, and whether the connection stays open.
func (c *fastSide) serveHit() (served, keep bool) {
	h := c.c.Head()
	p := c.h.p
	l := &c.h.l
	c.pre = fastPre{}
	if h.NeedsPolicy() || !p.caching() {
		return false, true
	}
	start := p.opts.Now()

	// The URL parts, as resolve computes them from the parsed request.
	var hostB, target []byte
	transparent := l.Mode == config.ModeTransparent
	if transparent && (!c.dst.IsValid() || len(h.Get("Via")) > 0) {
		return false, true // the general path answers (resolveIntercepted)
	}
	if l.Mode == config.ModeForward {
		if !field.HasPrefixFold(h.Target(), "http://") {
			return false, true
		}
		rest := h.Target()[len("http://"):]
		i := bytes.IndexAny(rest, "/?")
		if i < 0 {
			i = len(rest)
		}
		hostB, target = rest[:i], rest[i:]
		if len(hostB) == 0 || bytes.IndexByte(hostB, '@') >= 0 {
			return false, true
		}
	} else {
		if h.Target()[0] != '/' {
			return false, true
		}
		hostB, target = h.HostField(), h.Target()
	}
	if !plainTarget(target) || len(hostB) == 0 {
		return false, true
	}
	host := c.str(&c.lastHost, hostB)
	if !httpguts.ValidHostHeader(host) {
		return false, true
	}
	tgt := c.str(&c.lastTarget, target)
	if tgt == "" || tgt[0] == '?' {
		tgt = "/" + tgt // url.URL.RequestURI of an empty path
	}
	path, query := tgt, ""
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		path = tgt[:len(tgt)-(len(target)-i)]
		query = tgt[len(path)+1:]
	}

	// Routing, the filters' request phase and the cache decision: the
	// same functions the general path (resolve, filterRequest) runs.
	st := p.st.Load()
	isHEAD := len(h.Method()) == 4
	method := http.MethodGet
	if isHEAD {
		method = http.MethodHead
	}
	rt := st.routeFor(method, (*fastHead)(h), hostOnly(host), path, query)
	if rt == nil && l.Mode == config.ModeReverse {
		return false, true // 404 from the general path
	}
	ch := st.chainFor(l.Name, rt)
	if rt == nil && c.h.guard != nil && !hasEgressFilter(ch) {
		return false, true // the general path checks the destination (resolve)
	}
	var ph timeline.Phases
	cacheAt := p.opts.Now().Sub(start) // the end of routing, then of the filters
	// Not the previous request's consumer: a route without filters sets none.
	c.req.consumer = ""
	if len(ch) > 0 {
		// The request phase runs here, once, before the cache. Whatever
		// it decided goes with the request if it is handed over; an
		// early answer is written by the general path's one writer.
		c.req = fastRequest{c: c, method: method, host: host, target: tgt, route: rt, chain: ch}
		c.pre.st, c.pre.route, c.pre.filtered = st, rt, true
		c.pre.by, _ = ch.onRequest(&c.req, &c.pre.ans)
		c.pre.consumer = c.req.consumer
		if c.pre.by != nil {
			return false, true
		}
		t := p.opts.Now().Sub(start)
		ph.Mark(timeline.Filters, cacheAt, t)
		cacheAt = t
	}
	if rt != nil && rt.conc != nil { // concurrency.go: held for the hit, given back before a hand-over
		remote := c.c.RemoteAddr()
		if ok, _ := rt.conc.enter(remote); !ok {
			return false, true // the general path answers 503
		}
		defer rt.conc.leave(remote)
	}
	if ok, _ := p.cachesFor(rt, (*fastHead)(h)); !ok {
		return false, true
	}

	// The lookup, as lookupStored does it.
	c.key = shm.AppendKey(c.key[:0], http.MethodGet, routeKeyScheme(rt, "http"), host, rt.keyTarget(tgt))
	if c.ebuf == nil {
		c.ebuf = make([]byte, 16<<10)
	}
	e, out, ok := p.ops.GetStale(c.ebuf, c.key)
	c.ebuf = out
	if !ok {
		return false, true
	}
	if e.Flags&shm.FlagVaryIndex != 0 {
		c.vkey = shm.AppendVaryFromHeader(append(c.vkey[:0], c.key...), e.Vary, h.Values)
		if e, out, ok = p.ops.GetStale(c.ebuf, c.vkey); !ok {
			return false, true
		}
		c.ebuf = out
		if e.Flags&shm.FlagVaryIndex != 0 {
			return false, true
		}
	}
	he := toHTTPEntry(&e)
	if httpcache.Decide(httpcache.Directives{}, &he, start) != httpcache.ServeFresh || !fastpath.BodyAllowed(e.Status) {
		return false, true
	}
	writeAt := p.opts.Now().Sub(start)
	ph.Mark(timeline.Cache, cacheAt, writeAt)
	// The filters' response phase, before the head is written.
	rf := &c.rf
	rf.reset()
	if len(ch) > 0 {
		ch.onResponse(&c.req, e.Status, rf)
	}

	// The response, as serveEntry and net/http's framing write it.
	p.seen.Add(1)
	bw := c.c.Writer()
	fastpath.WriteStatus(bw, e.Status)
	var haveType, haveDate, haveCE bool
	ranges := e.Status == http.StatusOK // acceptRanges: stored bodies are complete
	if ranges {
		for it := shm.NewHeaderIter(e.Headers); it.Next(); {
			if field.EqualFold(it.Name(), "Accept-Ranges") && field.HasToken(it.Value(), "none") {
				ranges = false // the origin's "none" stands
			}
		}
	}
	for it := shm.NewHeaderIter(e.Headers); it.Next(); {
		name := it.Name()
		switch {
		case field.EqualFold(name, "Content-Length"), field.EqualFold(name, "Age"),
			field.EqualFold(name, "Cache-Status"), field.EqualFold(name, "X-Request-Id"):
			continue
		case ranges && field.EqualFold(name, "Accept-Ranges"):
			continue
		case rf.replaces(name):
			continue
		case field.EqualFold(name, "Content-Type"):
			haveType = true
		case field.EqualFold(name, "Date"):
			haveDate = true
		case field.EqualFold(name, "Content-Encoding"):
			haveCE = len(it.Value()) > 0
		}
		bw.Write(name)
		bw.WriteString(": ")
		bw.Write(it.Value())
		bw.WriteString("\r\n")
	}
	if ranges {
		bw.WriteString("Accept-Ranges: bytes\r\n")
	}
	for _, set := range [2][][2]string{rf.set, rf.add} {
		for _, kv := range set {
			bw.WriteString(kv[0])
			bw.WriteString(": ")
			bw.WriteString(kv[1])
			bw.WriteString("\r\n")
		}
	}
	num := &c.num
	bw.WriteString("Age: ")
	bw.Write(strconv.AppendInt(num[:0], int64(he.Age(start)/time.Second), 10))
	ttl := he.TTL(start)
	bw.WriteString("\r\nCache-Status: ")
	bw.Write(appendHitStatus(num[:0], ttl))
	bw.WriteString("\r\nX-Request-Id: ")
	reqID := h.Get("X-Request-Id")
	if len(reqID) == 0 || len(reqID) > 128 {
		reqID = appendRequestID(c.idBuf[:0])
	}
	bw.Write(reqID)
	bw.WriteString("\r\nContent-Length: ")
	bw.Write(strconv.AppendInt(num[:0], int64(len(e.Body)), 10))
	bw.WriteString("\r\n")
	if !haveType && !haveCE && len(e.Body) > 0 {
		bw.WriteString("Content-Type: ")
		bw.WriteString(http.DetectContentType(e.Body))
		bw.WriteString("\r\n")
	}
	if !haveDate {
		bw.WriteString("Date: ")
		bw.Write(time.Now().UTC().AppendFormat(num[:0], http.TimeFormat))
		bw.WriteString("\r\n")
	}
	keep = !h.ConnClose() && !c.c.Draining()
	if !keep {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if !isHEAD {
		bw.Write(e.Body)
	}
	if err := bw.Flush(); err != nil {
		keep = false
	}

	// Logs and metrics, as finish records them.
	d := p.opts.Now().Sub(start)
	ph.Mark(timeline.Transfer, writeAt, d) // the write, as upstreamPhases marks a hit's
	routeName := ""
	if rt != nil {
		routeName = rt.name
	}
	a := accessEntry{
		listener: l.Name, method: method, host: host, target: tgt,
		status: e.Status, route: routeName, cacheLabel: "hit", bytes: bodyBytes(isHEAD, len(e.Body)), d: d,
		consumer: c.req.consumer, start: start, phases: ph, reqIDb: reqID, tpb: h.Get("Traceparent"),
	}
	if p.opts.AccessLog != nil { // the strings only a log line needs
		a.reqID, a.remote = string(reqID), c.c.RemoteAddr()
		a.cache = httpcache.CacheStatus{Hit: true, TTL: ttl, HasTTL: true}.String()
		a.traceparent = string(h.Get("Traceparent"))
	}
	p.record(&a)
	return true, keep
}

func bodyBytes(head bool, n int) int {
	if head {
		return 0
	}
	return n
}

// str returns b as a string, reusing the last one when the bytes repeat
// (a connection usually asks one host for one set of URLs).
func (c *fastSide) str(last *string, b []byte) string {
	if string(b) != *last {
		*last = string(b)
	}
	return *last
}

// plainTarget reports whether a request target is one whose
// url.URL.RequestURI is itself and whose path needs no decoding: only
// unreserved and sub-delim characters, '/', ':', '@', and '%' escapes in
// the query. Others take the general path, which parses the URL.
func plainTarget(t []byte) bool {
	query := false
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == ':' || c == '@' ||
			c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
			c == '+' || c == ',' || c == ';' || c == '=':
		case c == '?':
			query = true
		case c == '%' && query:
			if i+2 >= len(t) || !field.IsHex(t[i+1]) || !field.IsHex(t[i+2]) {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

// appendHitStatus appends the Cache-Status member of a fresh hit,
// httpcache.CacheStatus{Hit: true, TTL: ttl, HasTTL: true}.String(),
// without allocating.
func appendHitStatus(dst []byte, ttl time.Duration) []byte {
	dst = append(dst, httpcache.DefaultCacheID...)
	dst = append(dst, "; hit; ttl="...)
	s := int64(ttl / time.Second)
	if ttl < 0 && ttl%time.Second != 0 {
		s-- // floor, as String does
	}
	return strconv.AppendInt(dst, s, 10)
}
