package proxy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// RequestsSeen returns how many requests p has received, through net/http
// or the fast path.
func RequestsSeen(p *Proxy) int64 { return p.seen.Load() }

// DisableDirect makes p send every request through httputil.ReverseProxy,
// not the direct forwarder.
func DisableDirect(p *Proxy) { p.noDirect.Store(true) }

// FlightsInProgress returns how many upstream fetches p has not finished:
// a response reaches the app before its fetch's bookkeeping ends.
func FlightsInProgress(p *Proxy) int { return p.flights.Len() }

// TestFilter is a route filter for tests: it records each phase it runs
// in Trace, answers 401 when the request lacks the field Require (if set),
// sets Upstream on the upstream request and Response on the response.
type TestFilter struct {
	Label    string
	Require  string
	Upstream [2]string
	Response [2]string
	Trace    *Trace
	// Consumer, if set, names the field whose value OnRequest sets as
	// the request's consumer.
	Consumer string
	// Views, if set, records which entry path's request view each
	// OnRequest saw: "fast" (the parsed head) or "net/http", and which
	// wrote the response head OnResponse changed ("response:fast" for a
	// hit the fast path wrote itself).
	Views *Trace
}

// Trace is the order in which test filters ran.
type Trace struct {
	mu  sync.Mutex
	evs []string
}

func (t *Trace) add(s string) {
	t.mu.Lock()
	t.evs = append(t.evs, s)
	t.mu.Unlock()
}

// Take returns the events so far and forgets them.
func (t *Trace) Take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.evs
	t.evs = nil
	return e
}

type testFilter struct{ f *TestFilter }

func (t testFilter) Name() string { return t.f.Label }

func (t testFilter) OnRequest(r request, a *answer) verdict {
	t.f.Trace.add(t.f.Label + ".request " + r.Method() + " " + r.Target() + " route=" + r.Route())
	if t.f.Views != nil {
		switch r.(type) {
		case *fastRequest:
			t.f.Views.add("fast")
		case *exchange:
			t.f.Views.add("net/http")
		}
	}
	if t.f.Require != "" && r.Field(t.f.Require) == "" {
		*a = answer{Status: http.StatusUnauthorized, Fields: [][2]string{{"Www-Authenticate", `Bearer realm="test"`}},
			Body: "no credentials\n", Note: "missing " + t.f.Require}
		return filterAnswered
	}
	if t.f.Consumer != "" {
		if v := r.Field(t.f.Consumer); v != "" {
			r.SetConsumer(strings.Clone(v))
		}
		t.f.Trace.add(t.f.Label + ".consumer=" + r.Consumer())
	}
	return filterContinue
}

func (t testFilter) OnUpstream(r request, f fields) {
	t.f.Trace.add(t.f.Label + ".upstream")
	if t.f.Upstream[0] != "" {
		f.Set(t.f.Upstream[0], t.f.Upstream[1])
	}
}

func (t testFilter) OnResponse(r request, status int, f fields) {
	t.f.Trace.add(t.f.Label + ".response " + strconv.Itoa(status))
	if t.f.Views != nil {
		switch f.(type) {
		case *fastFields:
			t.f.Views.add("response:fast")
		case headerFields:
			t.f.Views.add("response:net/http")
		}
	}
	if t.f.Response[0] != "" {
		f.Set(t.f.Response[0], t.f.Response[1])
	}
}

// AddListenerFilter gives listener lis of p the filter f, run before
// its routes' filters and on requests without a route, as a reload
// that built it from the configuration would.
func AddListenerFilter(p *Proxy, lis string, f *TestFilter) {
	old := p.st.Load()
	st := *old
	lc := &listenerChains{unrouted: chain{testFilter{f}}, routed: map[*route]chain{}}
	for _, r := range st.routes {
		lc.routed[r] = append(chain{testFilter{f}}, r.filters...)
	}
	st.listeners = map[string]*listenerChains{lis: lc}
	p.st.Store(&st)
}

// AddFilter appends f to the chain of p's route named route, as a reload
// would: a new state with a new route, swapped in atomically.
func AddFilter(p *Proxy, route string, f *TestFilter) {
	old := p.st.Load()
	st := *old
	st.routes = slices.Clone(old.routes)
	for i, r := range st.routes {
		if r.name == route {
			nr := *r
			nr.filters = append(slices.Clone(r.filters), testFilter{f})
			st.routes[i] = &nr
			st.index = newRouteIndex(st.routes)
			p.st.Store(&st)
			return
		}
	}
	panic("no route " + route)
}
