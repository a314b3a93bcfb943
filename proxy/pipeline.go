package proxy

import (
	"net/http"
	"net/netip"
	"strconv"
	"unsafe"

	"github.com/zerohop/zerohop/proxy/internal/field"
)

// The request view of each entry path (filter.go's request): the
// exchange for a request net/http parsed (or the fast path built), and
// fastRequest for the fast path's parsed head.

func (x *exchange) Method() string              { return x.in.Method }
func (x *exchange) Host() string                { return x.host }
func (x *exchange) Target() string              { return x.target }
func (x *exchange) Field(name string) string    { return x.in.Header.Get(name) }
func (x *exchange) RemoteAddr() string          { return x.in.RemoteAddr }
func (x *exchange) Listener() string            { return x.lis.Name }
func (x *exchange) Consumer() string            { return x.consumer }
func (x *exchange) Destination() netip.AddrPort { return x.dst }
func (x *exchange) SetConsumer(name string)     { x.consumer = name }

func (x *exchange) Route() string {
	if x.route == nil {
		return ""
	}
	return x.route.name
}

// filterRequest runs the request phase of x's chain, unless the
// fast path ran it on the parsed head for this same route, and answers
// the request when a filter did. It reports whether it answered.
func (p *Proxy) filterRequest(w http.ResponseWriter, x *exchange) bool {
	if x.filtered && x.preRoute != x.route {
		// Not the route the fast path filtered for (it cannot happen with
		// one state and one routeFor, but a request must never skip its
		// route's filters): run this route's.
		x.filtered, x.answeredBy, x.ans, x.consumer = false, nil, answer{}, ""
	}
	if !x.filtered {
		x.answeredBy, _ = x.chain.onRequest(x, &x.ans)
		x.filtered = true
	}
	if x.answeredBy == nil {
		return false
	}
	p.answerEarly(w, x)
	return true
}

// answerEarly writes the answer of the filter that answered x: the
// filter's fields, then the proxy's (a request id; a plain-text type
// for a body without one), as fail does. It goes through the recorder,
// so the response phase runs on it as on any response.
func (p *Proxy) answerEarly(w http.ResponseWriter, x *exchange) {
	a := &x.ans
	h := w.Header()
	for _, kv := range a.Fields {
		h.Set(kv[0], kv[1])
	}
	if a.Body != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
	}
	h["X-Request-Id"] = x.reqIDField()
	h.Set("Content-Length", strconv.Itoa(len(a.Body)))
	x.filterNote = filterNote(x.answeredBy, a)
	p.m.filterAnswers.WithLabelValues(x.Route(), x.answeredBy.Name(), strconv.Itoa(a.Status)).Inc()
	w.WriteHeader(a.Status)
	if x.in.Method != http.MethodHead && a.Body != "" {
		w.Write([]byte(a.Body))
	}
}

// fastRequest is the request view of a request the fast path parsed: its
// strings come from the connection's scratch (fastSide.str), its fields
// from the parsed head, so making it allocates nothing.
type fastRequest struct {
	c            *fastSide
	method       string
	host, target string
	route        *route
	chain        chain
	consumer     string
}

func (r *fastRequest) Method() string              { return r.method }
func (r *fastRequest) Host() string                { return r.host }
func (r *fastRequest) Target() string              { return r.target }
func (r *fastRequest) RemoteAddr() string          { return r.c.c.RemoteAddr() }
func (r *fastRequest) Listener() string            { return r.c.h.l.Name }
func (r *fastRequest) Consumer() string            { return r.consumer }
func (r *fastRequest) Destination() netip.AddrPort { return r.c.dst }

func (r *fastRequest) SetConsumer(name string) { r.consumer = name }

func (r *fastRequest) Route() string {
	if r.route == nil {
		return ""
	}
	return r.route.name
}

// Field returns the value in the connection's read buffer, without a
// copy: valid while the head is, which outlasts the filter's call.
func (r *fastRequest) Field(name string) string {
	v := r.c.c.Head().Get(name)
	if len(v) == 0 {
		return ""
	}
	return unsafe.String(&v[0], len(v))
}

// fastPre is what the fast path's hit attempt decided before handing a
// request to the general path: the state and route it used and the
// request phase's outcome, so that the filters run once per request.
type fastPre struct {
	st       *state
	route    *route
	filtered bool
	by       filter
	ans      answer
	consumer string
}

// fastFields are the response fields a filter sets or removes on a hit
// the fast path writes: kept in the connection's reused slices, applied
// as the stored fields are written.
type fastFields struct {
	set [][2]string
	add [][2]string // written after the stored fields, which they join
	del []string
}

func (f *fastFields) reset() { f.set, f.add, f.del = f.set[:0], f.add[:0], f.del[:0] }

func (f *fastFields) Add(name, value string) {
	f.add = append(f.add, [2]string{http.CanonicalHeaderKey(name), value})
}

// dropAdded forgets the values added to name (a Set or Del replaces them).
func (f *fastFields) dropAdded(name string) {
	for i := 0; i < len(f.add); i++ {
		if f.add[i][0] == name {
			f.add = append(f.add[:i], f.add[i+1:]...)
			i--
		}
	}
}

func (f *fastFields) Set(name, value string) {
	name = http.CanonicalHeaderKey(name)
	f.dropAdded(name)
	for i := range f.set {
		if f.set[i][0] == name {
			f.set[i][1] = value
			return
		}
	}
	f.set = append(f.set, [2]string{name, value})
}

func (f *fastFields) Del(name string) {
	name = http.CanonicalHeaderKey(name)
	f.dropAdded(name)
	for i := 0; i < len(f.set); i++ {
		if f.set[i][0] == name {
			f.set = append(f.set[:i], f.set[i+1:]...)
			i--
		}
	}
	f.del = append(f.del, name)
}

// replaces reports whether a stored field named name is not written as
// stored: a filter set or removed it.
func (f *fastFields) replaces(name []byte) bool {
	for i := range f.set {
		if field.EqualFold(name, f.set[i][0]) {
			return true
		}
	}
	for _, d := range f.del {
		if field.EqualFold(name, d) {
			return true
		}
	}
	return false
}
