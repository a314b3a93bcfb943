package proxy

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// Filters: the request pipeline's extension point. Every request runs the
// same pipeline, whichever way it arrived (the fast path's parsed head,
// net/http, h2c):
//
//	route match → filters' OnRequest → cache (lookup, freshness, coalescing)
//	  → filters' OnUpstream (misses only) → forward → store
//	  → filters' OnResponse (every response: hit, miss, early answer, error)
//
// A route's filters are a fixed slice built when the configuration is
// loaded (compileRoute); a request walks it with a loop, not a chain of
// closures, so a pass through an empty chain costs nothing and one
// through filters that do not answer allocates only what they do.
//
// Where each phase runs, relative to the cache, is the point of the
// design (see docs/architecture.md):
//   - OnRequest runs before the cache is looked at, on hits as on misses:
//     authentication, rate limits and egress policy belong here, so that
//     a cached response is never served to a caller a filter refuses. It
//     may answer early (Envoy's sendLocalReply): the answer is written by
//     the proxy, through OnResponse like any other response.
//   - OnUpstream runs after the cache decision, on the request that goes
//     upstream only: credential injection belongs here, so credentials
//     never reach the cache key, a stored response or a hit.
//   - OnResponse runs on every response's head before it is written, in
//     reverse order (the first filter sees the response last, as in
//     Envoy's encoder chain and Caddy's middleware unwinding).

// request is what a filter sees of a request. The fast path implements it
// on the parsed head (fastRequest) without building an http.Request; the
// net/http path on the exchange.
type request interface {
	Method() string
	// Host is the authority the request is for, as received (with a port
	// if it had one).
	Host() string
	// Target is the origin-form request target: path and query.
	Target() string
	// Field returns the first value of the request field name (in
	// canonical form), or "". On the fast path the string aliases the
	// connection's read buffer: it is valid until the filter returns
	// (strings.Clone it to keep it).
	Field(name string) string
	// RemoteAddr is the client's address.
	RemoteAddr() string
	// Listener and Route name the listener and route serving the request.
	Listener() string
	Route() string
	// Consumer is who the request was authenticated as ("" until a
	// filter said): an authentication filter sets it in OnRequest, and
	// later filters (rate limits keyed by consumer), the access log
	// ("consumer") and the hand-over from the fast path to net/http see
	// it. The string must not alias request bytes (intern or clone it).
	Consumer() string
	SetConsumer(name string)
	// Destination is, on a transparent listener, the address the app's
	// connection was going to (the zero AddrPort elsewhere).
	Destination() netip.AddrPort
}

// verdict is what OnRequest decided.
type verdict uint8

const (
	filterContinue verdict = iota // on to the next filter, then the cache
	filterAnswered                // the request is answered with the filter's answer
)

// answer is a filter's early answer (a 401, 403, 429 or 503). Fields and
// Body are usually built when the filter is, so answering allocates
// nothing of its own.
type answer struct {
	Status int
	Fields [][2]string // set on the answer, in order
	Body   string
	// Note says why, for the access log's filter attribute ("" = the
	// filter's name).
	Note string
}

// fields are the fields of a message head a filter may change: the
// response's in OnResponse, the upstream request's in OnUpstream.
type fields interface {
	Set(name, value string)
	// Add appends a value to the field.
	Add(name, value string)
	Del(name string)
}

// filter is one step of a route's chain.
type filter interface {
	Name() string
	// OnRequest inspects the request before the cache. To answer it, it
	// fills a and returns filterAnswered; later filters and the cache do
	// not run.
	OnRequest(r request, a *answer) verdict
	// OnUpstream changes the fields of the request sent upstream.
	OnUpstream(r request, f fields)
	// OnResponse changes the fields of the response to the client, of
	// status status, before its head is written.
	OnResponse(r request, status int, f fields)
}

// passFilter is embedded by filters that use only some phases.
type passFilter struct{}

func (passFilter) OnRequest(request, *answer) verdict { return filterContinue }
func (passFilter) OnUpstream(request, fields)         {}
func (passFilter) OnResponse(request, int, fields)    {}

// chain is the filters a request runs, in order: its listener's (which
// run on every request of the listener, with or without a route), then
// its route's, each in configuration order. state.chainFor resolves it
// once per request, when the request is routed.
type chain []filter

// onRequest runs the request phase. When a filter answers, it returns
// the filter, its answer in a, and true.
func (c chain) onRequest(r request, a *answer) (by filter, answered bool) {
	for _, f := range c {
		if f.OnRequest(r, a) == filterAnswered {
			return f, true
		}
	}
	return nil, false
}

func (c chain) onUpstream(r request, f fields) {
	for _, fl := range c {
		fl.OnUpstream(r, f)
	}
}

func (c chain) onResponse(r request, status int, f fields) {
	for i := len(c) - 1; i >= 0; i-- {
		c[i].OnResponse(r, status, f)
	}
}

// headerFields are the fields of a net/http message head.
type headerFields http.Header

func (h headerFields) Set(name, value string) { http.Header(h).Set(name, value) }
func (h headerFields) Del(name string)        { http.Header(h).Del(name) }
func (h headerFields) Add(name, value string) { http.Header(h).Add(name, value) }

// filterNote is what the access log records of an early answer.
func filterNote(by filter, a *answer) string {
	if a.Note != "" {
		return by.Name() + ": " + a.Note
	}
	return by.Name()
}

// setFieldsFilter sets fixed fields on every response of its route: the
// route's response_headers. It is the worked example of
// docs/architecture.md.
type setFieldsFilter struct {
	passFilter
	set [][2]string // canonical name, value
}

func newSetFieldsFilter(m map[string]string) *setFieldsFilter {
	f := &setFieldsFilter{}
	for k, v := range m {
		f.set = append(f.set, [2]string{http.CanonicalHeaderKey(k), v})
	}
	// A stable order, so both paths write the fields alike.
	slices.SortFunc(f.set, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return f
}

func (*setFieldsFilter) Name() string { return "response_headers" }

func (f *setFieldsFilter) OnResponse(_ request, _ int, h fields) {
	for _, kv := range f.set {
		h.Set(kv[0], kv[1])
	}
}
