// Package proxy is zerohop's sidecar proxy: it takes the app's outbound
// HTTP (as a forward proxy or through reverse-proxy routes), forwards
// misses to upstream clusters, and fills the shared-memory cache with
// responses a shared cache may store under RFC 9111, so that the app's next
// read of the same URL is a zero-hop hit.
//
// Every request runs one pipeline, whichever way it arrived (the HTTP/1.1
// fast path's parsed head, net/http, h2c): route match, the route's
// filter chain (filter.go), the cache (lookup, freshness, coalescing),
// forwarding, storing. Filters run in three phases: OnRequest before the
// cache, on hits as on misses (authentication and rate limits, which must
// refuse before a cached response is served; a filter may answer early),
// OnUpstream after the cache decision on the upstream request only
// (credential injection), and OnResponse on every response head, in
// reverse order. docs/architecture.md draws the pipeline and works
// through adding a filter.
//
// Forwarding is built on httputil.ReverseProxy: Rewrite picks the
// upstream, ModifyResponse stores, revalidates, compresses and
// invalidates, and ErrorHandler serves stale-if-error; a direct forwarder
// (direct.go) does the same for the common miss. Cache policy comes from
// package httpcache; the cache itself is an shm.Writer.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/httpcache"
	"github.com/zerohop/zerohop/proxy/internal/flight"
	"github.com/zerohop/zerohop/shm"
)

// Options are the proxy's collaborators. Only Config is required.
type Options struct {
	// Cache is the shared-memory cache the proxy fills and serves from.
	// Nil disables caching (a plain forwarding proxy).
	Cache *shm.Writer
	// Logger receives operational messages. Default slog.Default().
	Logger *slog.Logger
	// AccessLog receives one line per request. Nil disables access logs.
	AccessLog *slog.Logger
	// Registerer receives the proxy's Prometheus metrics. Nil: a private
	// registry (see Proxy.Gatherer).
	Registerer prometheus.Registerer
	// Tier, if set, is where the proxy puts, looks up and removes entries
	// instead of Cache: a store.Tier, which keeps the persistent tier
	// behind shared memory (misses there are promoted from it, and puts and
	// purges reach it in order). Cache still provides the statistics.
	Tier Cache
	// Now is the clock (for tests). Default time.Now.
	Now func() time.Time
}

// Cache is what the proxy does with the cache: the shared-memory writer
// itself, or a store.Tier with the persistent tier behind it.
type Cache interface {
	Put(it *shm.Item) error
	GetStale(dst, key []byte) (shm.Entry, []byte, bool)
	Delete(key []byte) bool
	PurgeTag(tag string, soft bool) int
}

// Proxy is the sidecar proxy. Its handlers are safe for concurrent use and
// keep serving across Reload.
type Proxy struct {
	opts  Options
	log   *slog.Logger
	cache *shm.Writer // statistics; nil: no caching
	ops   Cache       // puts, lookups and purges
	st    atomic.Pointer[state]
	rp    *httputil.ReverseProxy
	// noDirect sends every request through rp (tests compare the two).
	noDirect atomic.Bool
	egress   upstreamClient // forward-mode requests without a listener guard (h1; nothing allowed)
	im       *interceptMetrics
	own      sync.Map     // netip.AddrPort → struct{}: local ends of passthrough dials (transparent.go)
	flights  flight.Group // coalesced fetches, by primary key
	m        *metrics
	reg      *prometheus.Registry
	bg       sync.WaitGroup // background revalidations
	bgCtx    context.Context
	bgStop   context.CancelFunc
	bufs     sync.Pool // *[]byte lookup buffers

	// Forward mode's destination checks (egress.go).
	guardsMu  sync.Mutex
	guards    map[string]*egressGuard // by listener name
	oldGuards []*egressGuard          // replaced, closed by Close
	self      self                    // the sidecar's own addresses
	eg        egressShared            // the egress policy's audit files and counters
	creds     credMetrics             // outbound credentials' reloads (credentials.go)

	listenerTLS listenerTLS  // TLS listeners' certificate files (tls.go)
	reloadMu    sync.Mutex   // serialises Reload and DNS refreshes
	dns         dnsClusters  // dns_refresh's resolved names, by cluster (dns.go)
	auth        authRegistry // running authenticators (auth.go)
	authm       *authMetrics
	concm       *concMetrics // concurrency.go

	limits *limitRegistry // rate limits, kept across reloads (ratelimit.go)

	fastInflight atomic.Int64 // requests being served by the fast path
	seen         atomic.Int64 // requests received, by either path

	rings  requestRings               // recent and slow request timelines (timeline.go)
	tracer atomic.Pointer[spanExport] // nil: no spans (tracing.go)
}

// state is everything a reload replaces, swapped atomically; a request
// uses the state it started with to the end.
type state struct {
	cfg       *config.Config
	routes    []*route
	index     *routeIndex // over routes (routematch.go)
	clusters  map[string]*cluster
	storeOpts httpcache.StoreOptions
	freshOpts httpcache.FreshnessOptions
	maxObject int64
	coalesce  time.Duration
	sie       time.Duration
	limits    limitSet // rate limits, by name
	targeted  []string // cache.targeted_fields, canonical
	// listeners holds the chains of the listeners that have filters of
	// their own (chainFor); empty when none has.
	listeners map[string]*listenerChains
	auth      map[string]*authRuntime // the authenticators by name (auth.go)
	egress    *egressPolicy           // the egress policy (egresspolicy.go); nil: none
}

// listenerChains are the chains of one listener with filters of its own:
// for requests without a route, and for each route (the listener's
// filters, then the route's), built once per configuration.
type listenerChains struct {
	unrouted chain
	routed   map[*route]chain
}

// chainFor returns the filters a request of listener lis routed to rt
// (nil: none) runs. Both entry paths resolve the chain with it.
func (st *state) chainFor(lis string, rt *route) chain {
	if len(st.listeners) > 0 {
		if lc := st.listeners[lis]; lc != nil {
			if rt == nil {
				return lc.unrouted
			}
			return lc.routed[rt]
		}
	}
	if rt == nil {
		return nil
	}
	return rt.filters
}

// listenerFilters builds the filters of listener l that run before its
// routes' filters, on every request it accepts (routed or not):
// listener-wide policies (rate limits, egress policy) are added here.
func (p *Proxy) listenerFilters(st *state, l config.Listener) chain {
	return st.limits.filters(l.RateLimits)
}

// New builds a proxy for cfg (already validated by config.Load or
// config.Parse).
func New(cfg *config.Config, opts Options) (*Proxy, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Proxy{opts: opts, log: opts.Logger, cache: opts.Cache, rings: newRequestRings()}
	switch {
	case opts.Tier != nil:
		p.ops = opts.Tier
	case opts.Cache != nil:
		p.ops = opts.Cache
	}
	p.bufs.New = func() any { b := make([]byte, 16<<10); return &b }
	reg := opts.Registerer
	if reg == nil {
		p.reg = prometheus.NewRegistry()
		reg = p.reg
	}
	m, err := newMetrics(reg, opts.Cache)
	if err != nil {
		return nil, err
	}
	p.m = m
	m.tls.log = p.log
	p.im = newInterceptMetrics()
	for _, c := range p.im.collectors() {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	if p.authm, err = newAuthMetrics(reg); err != nil {
		return nil, err
	}
	if p.concm, err = newConcMetrics(reg); err != nil {
		return nil, err
	}
	if err := p.eg.init(reg); err != nil {
		return nil, err
	}
	if err := p.creds.init(reg); err != nil {
		return nil, err
	}
	if p.limits, err = newLimitRegistry(reg, opts.Logger); err != nil {
		return nil, err
	}
	p.egress = p.guardFor(config.Listener{}).transport // no listener: nothing allowed
	p.bgCtx, p.bgStop = context.WithCancel(context.Background())
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      dispatch{p},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		BufferPool:     newBufferPool(),
		// Each write goes to the app at once, as in copyBody: a slow or
		// stalled upstream body is relayed as it comes, never held back.
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	if err := reg.Register(endpointCollector{p}); err != nil {
		return nil, err
	}
	st, err := p.compile(cfg, nil)
	if err != nil {
		p.dns.prune(nil)
		return nil, err
	}
	p.st.Store(st)
	st.start()
	p.commitAuth(st.auth)
	p.limits.commit(st.limits)
	if err := p.setTracing(cfg.Tracing); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Reload switches to cfg. In-flight requests finish on the old
// configuration; clusters whose configuration did not change keep their
// warm connection pools. On error the old configuration stays.
func (p *Proxy) Reload(cfg *config.Config) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	old := p.st.Load()
	st, err := p.compile(cfg, old)
	if err != nil {
		p.dns.prune(old.cfg)
		return err
	}
	p.swap(old, st)
	if err := p.setTracing(cfg.Tracing); err != nil {
		p.log.Error("tracing: keeping the previous exporter", "err", err)
	}
	p.m.reloads.Inc()
	return nil
}

// swap puts st in use in place of old (under reloadMu).
func (p *Proxy) swap(old, st *state) {
	p.st.Store(st)
	st.start()
	p.dns.prune(st.cfg)
	p.commitAuth(st.auth)
	p.limits.commit(st.limits)
	// Pools of clusters that went away or changed: let in-flight requests
	// finish, then drop the idle connections.
	for name, c := range old.clusters {
		if nc, ok := st.clusters[name]; !ok || nc != c {
			c.stop()
			time.AfterFunc(30*time.Second, c.close)
		}
	}
}

func (p *Proxy) compile(cfg *config.Config, old *state) (*state, error) {
	st := &state{cfg: cfg, clusters: map[string]*cluster{}}
	var err error
	if st.limits, err = p.limits.build(cfg, p.opts.Now); err != nil {
		return nil, err
	}
	if err := st.limits.check(cfg); err != nil {
		return nil, err
	}
	for _, cc := range cfg.Clusters {
		cc, hostHeaders := p.expandDNS(cc) // dns_refresh: names become their addresses (dns.go)
		if old != nil {
			if c, ok := old.clusters[cc.Name]; ok && c.sameConfig(cc) {
				st.clusters[cc.Name] = c
				continue
			}
		}
		c, err := newCluster(cc, p.m)
		if err == nil {
			var prev *cluster
			if old != nil {
				prev = old.clusters[cc.Name]
			}
			c.setHostHeaders(hostHeaders)
			c.lb, err = newLB(c, prev, p.m, p.log)
		}
		if err != nil {
			if c != nil {
				c.close()
			}
			closeNew(st, old)
			old.adopt() // the hosts new balancers took back to the old ones
			return nil, err
		}
		if c.cred, err = p.newCredential(cc); err != nil {
			return nil, err
		}
		st.clusters[cc.Name] = c
	}
	for _, rc := range cfg.Routes {
		r, err := compileRoute(rc, st.clusters, st.limits.filters(rc.RateLimits))
		if err != nil {
			closeNew(st, old)
			old.adopt()
			return nil, err
		}
		if r.cluster == nil && rc.Cluster != "" {
			old.adopt()
			return nil, fmt.Errorf("proxy: route %q: unknown cluster %q", rc.Name, rc.Cluster)
		}
		st.routes = append(st.routes, r)
	}
	if err := p.attachAuth(st); err != nil {
		closeNew(st, old)
		old.adopt()
		return nil, err
	}
	attachConcurrency(st)
	egress, err := p.compileEgress(cfg.Egress)
	if err != nil {
		closeNew(st, old)
		old.adopt()
		return nil, err
	}
	st.egress = egress
	st.index = newRouteIndex(st.routes)
	for _, l := range cfg.Listeners {
		lf := p.listenerFilters(st, l)
		// The egress checks first (refused before anything else runs),
		// then authentication (it sets the consumer the others use).
		lf = append(append(p.egressFilters(st, l), authChain(l.Auth, st.auth)...), lf...)
		if len(lf) == 0 {
			continue
		}
		if st.listeners == nil {
			st.listeners = map[string]*listenerChains{}
		}
		lc := &listenerChains{unrouted: lf, routed: map[*route]chain{}}
		for _, r := range st.routes {
			lc.routed[r] = append(slices.Clip(lf), r.filters...)
		}
		st.listeners[l.Name] = lc
	}
	cc := cfg.Cache
	st.storeOpts.AllowSetCookie = cc.AllowSetCookie
	st.freshOpts = httpcache.FreshnessOptions{HeuristicMax: cc.HeuristicMax}
	st.maxObject = int64(cc.MaxObjectSize)
	st.coalesce = cc.CoalesceTimeout
	st.sie = cc.StaleIfError
	st.targeted = canonicalNames(cc.TargetedFields)
	return st, nil
}

// Config returns the configuration in use.
func (p *Proxy) Config() *config.Config { return p.st.Load().cfg }

// Gatherer returns the private metrics registry, or nil when metrics go to
// Options.Registerer.
func (p *Proxy) Gatherer() prometheus.Gatherer {
	if p.reg == nil {
		return nil
	}
	return p.reg
}

// Close stops background revalidations and waits for them.
func (p *Proxy) Close() error {
	p.bgStop()
	p.bg.Wait()
	p.dns.prune(nil)
	p.closeGuards()
	p.closeAuth()
	p.eg.close()
	p.limits.close()
	for _, c := range p.st.Load().clusters {
		c.stop()
		c.close()
	}
	p.listenerTLS.close()
	p.stopTracing()
	return nil
}

// Handler returns the HTTP handler for a listener.
func (p *Proxy) Handler(l config.Listener) http.Handler {
	return p.newListenerHandler(l)
}

func (p *Proxy) newListenerHandler(l config.Listener) *listenerHandler {
	h := &listenerHandler{p: p, l: l}
	if l.Mode == config.ModeForward || l.Mode == config.ModeTransparent {
		h.guard = p.guardFor(l)
	}
	return h
}

type listenerHandler struct {
	p     *Proxy
	l     config.Listener
	guard *egressGuard // forward mode: where clients may go
}

// dispatch sends each outgoing request through its cluster's pool.
type dispatch struct{ p *Proxy }

func (d dispatch) RoundTrip(r *http.Request) (*http.Response, error) {
	return d.p.send(exchangeFrom(r.Context()), r, nil) // with retries (retry.go)
}

// errUpstreamTimeout marks a route timeout, answered 504.
var errUpstreamTimeout = errors.New("proxy: upstream timeout")

// bufferPool holds the 32 KiB buffers bodies are copied through. It pools
// array pointers, which a slice converts to without allocating.
type bufferPool struct{ p sync.Pool }

const copyBufSize = 32 << 10

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([copyBufSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufSize]byte)[:] }
func (b *bufferPool) Put(x []byte) {
	if cap(x) >= copyBufSize {
		b.p.Put((*[copyBufSize]byte)(x[:copyBufSize]))
	}
}
