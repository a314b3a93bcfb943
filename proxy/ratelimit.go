package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/ratelimit"
)

// Rate limits (config.Limit): a rateLimitFilter in a listener's or a
// route's chain holds the limits that list names. It runs in the request
// phase, before the cache, so a refused request is never served a stored
// response. Each limit keeps a GCRA bucket per key, in a bounded,
// lock-free table in this process (ratelimit.Table) or in Redis for a global limit
// (ratelimit.Global). docs/limits.md describes the behaviour.

// maxKeyLen is the longest key a limit keeps as it is; a longer one (a
// huge header value) is kept as its 64-bit hash, so that max_keys bounds
// the memory whatever clients send.
const maxKeyLen = 64

// rejectBody is the body of a 429.
const rejectBody = "rate limit exceeded\n"

// limiter is one configured limit, built once and kept across reloads
// while its configuration does not change (its buckets with it).
type limiter struct {
	cfg    config.Limit
	name   string
	key    config.LimitKey
	header string // canonical, for key: header
	shadow bool
	table  *ratelimit.Table  // a local limit's buckets
	global *ratelimit.Global // a global limit; nil for a local one
	clock  atomic.Pointer[limitClock]

	policy   string // the RateLimit-Policy field value
	rlPrefix string // the RateLimit field value up to t=

	// counts are the decisions not counted by the table (which counts a
	// local limit's allowed and refused requests in each key's entry):
	// a global limit's, and a local shadow limit's, by outcome.
	counts      [nOutcomes]atomic.Uint64
	redisErrors atomic.Uint64

	log     *slog.Logger
	lastLog atomic.Int64 // unix ns of the last Redis error logged
}

// limitClock is the clock a limiter decides by: the proxy's
// (Options.Now), read as time since the limiter was made, so that a wall
// clock step does not move the buckets (time.Now carries a monotonic
// reading).
type limitClock struct {
	now   func() time.Time
	epoch time.Time
}

// decide returns whether the request of r may go on under l, and if not,
// how long until it could (ns).
func (l *limiter) decide(r request) (ok bool, wait int64) {
	key := l.keyOf(r)
	c := l.clock.Load()
	now := int64(c.now().Sub(c.epoch))
	if l.global == nil {
		d := l.table.Take(key, now)
		switch {
		case d.Allowed:
			return true, 0
		case l.shadow:
			return true, 0 // counted by the table as refused: shadow_rejected
		}
		return false, d.Wait
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Global.Timeout)
	d, o, err := l.global.Take(ctx, key, now)
	cancel()
	if err != nil {
		l.redisErrors.Add(1)
		l.logError(err)
	}
	switch {
	case d.Allowed:
		l.counts[globalOutcome[o]].Add(1)
		return true, 0
	case l.shadow:
		l.counts[oShadowRejected].Add(1)
		return true, 0
	}
	l.counts[globalOutcome[o]].Add(1)
	return false, d.Wait
}

// The outcomes of zerohop_ratelimit_decisions_total.
const (
	oAllowed = iota
	oRejected
	oShadowRejected
	oLocalReject
	oErrorOpen
	oErrorClosed
	nOutcomes
)

var outcomeLabels = [nOutcomes]string{"allowed", "rejected", "shadow_rejected", "local_reject", "error_open", "error_closed"}

var globalOutcome = [...]int{ratelimit.Allowed: oAllowed, ratelimit.Rejected: oRejected,
	ratelimit.LocalReject: oLocalReject, ratelimit.ErrorOpen: oErrorOpen, ratelimit.ErrorClosed: oErrorClosed}

// values returns l's decisions by outcome, its evictions and keys, and
// its Redis errors.
func (l *limiter) values() (v [nOutcomes]uint64, evictions uint64, keys int, redisErrs uint64) {
	for i := range v {
		v[i] = l.counts[i].Load()
	}
	st := l.table.Stats()
	if l.global == nil {
		v[oAllowed] += st.Allowed
		if l.shadow {
			v[oShadowRejected] += st.Refused
		} else {
			v[oRejected] += st.Refused
		}
	}
	return v, st.Evictions, st.Keys, l.redisErrors.Load()
}

// keyOf is the bucket key of r: "" when r has none (no such field, no
// consumer), which makes such requests share a bucket.
func (l *limiter) keyOf(r request) string {
	var k string
	switch l.key {
	case config.KeyClientAddress:
		k = r.RemoteAddr()
		if i := strings.LastIndexByte(k, ':'); i > 0 && !strings.HasSuffix(k, "]") {
			k = k[:i] // the port; "[::1]" keeps its brackets
		}
	case config.KeyHeader:
		k = r.Field(l.header)
	case config.KeyConsumer:
		k = r.Consumer()
	}
	if len(k) > maxKeyLen {
		k = "#" + strconv.FormatUint(xxhash.Sum64String(k), 16)
	}
	return k
}

// logError logs a Redis failure at most every 10 seconds per limit; the
// counters have every one.
func (l *limiter) logError(err error) {
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last < int64(10*time.Second) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	pol := "allowed (on_error: open)"
	if l.cfg.Global.OnError == config.FailClosed {
		pol = "refused (on_error: closed)"
	}
	l.log.Warn("rate limit: redis failed; requests "+pol, "limit", l.name, "err", err)
}

// answer fills a with l's 429 for a request that could go on in wait ns.
func (l *limiter) answer(a *answer, wait int64) {
	secs := max((wait+int64(time.Second)-1)/int64(time.Second), 1)
	s := strconv.FormatInt(secs, 10)
	*a = answer{
		Status: http.StatusTooManyRequests,
		Fields: [][2]string{{"Retry-After", s}, {"Ratelimit-Policy", l.policy}, {"Ratelimit", l.rlPrefix + s}},
		Body:   rejectBody,
		Note:   l.name,
	}
}

// rateLimitFilter applies limits, in order, to each request. Every limit
// counts the request; when several refuse it, the one whose wait is
// longest answers (its Retry-After is when the request could pass them
// all).
type rateLimitFilter struct {
	passFilter
	limits []*limiter
}

func (*rateLimitFilter) Name() string { return "rate_limit" }

func (f *rateLimitFilter) OnRequest(r request, a *answer) verdict {
	var by *limiter
	var longest int64
	for _, l := range f.limits {
		if ok, wait := l.decide(r); !ok && (by == nil || wait > longest) {
			by, longest = l, wait
		}
	}
	if by == nil {
		return filterContinue
	}
	by.answer(a, longest)
	return filterAnswered
}

// limitSet is a configuration's limits, by name.
type limitSet map[string]*limiter

// check returns an error if cfg names a limit it does not define (a
// configuration proxy.New got without config.Validate): a request must
// never pass a limit that is not there.
func (s limitSet) check(cfg *config.Config) error {
	for _, l := range cfg.Listeners {
		for _, n := range l.RateLimits {
			if s[n] == nil {
				return fmt.Errorf("proxy: listener %q: unknown limit %q", l.Name, n)
			}
		}
	}
	for _, r := range cfg.Routes {
		for _, n := range r.RateLimits {
			if s[n] == nil {
				return fmt.Errorf("proxy: route %q: unknown limit %q", r.Name, n)
			}
		}
	}
	return nil
}

// filters returns the chain (none or one filter) applying the limits
// names, which check found defined.
func (s limitSet) filters(names []string) chain {
	if len(names) == 0 {
		return nil
	}
	f := &rateLimitFilter{}
	for _, n := range names {
		f.limits = append(f.limits, s[n])
	}
	return chain{f}
}

// limitRegistry builds the limits of each configuration, keeping the
// limiters (and their buckets) and Redis pools whose settings did not
// change, and exports their metrics.
type limitRegistry struct {
	log *slog.Logger

	mu      sync.Mutex
	current limitSet
	clients map[redisPool]redis.UniversalClient
	// retired are the counts of limiters a reload replaced or removed,
	// by limit name, so that the counters never go back.
	retired map[string]*limitCounts
}

// limitCounts are a limit's counters.
type limitCounts struct {
	decisions [nOutcomes]uint64
	evictions uint64
	redisErrs uint64
}

// redisPool is what identifies a shared Redis client.
type redisPool struct {
	r       config.LimitRedis
	timeout time.Duration
}

func newLimitRegistry(reg prometheus.Registerer, log *slog.Logger) (*limitRegistry, error) {
	g := &limitRegistry{log: log, clients: map[redisPool]redis.UniversalClient{}, retired: map[string]*limitCounts{}}
	if err := reg.Register(g); err != nil {
		return nil, err
	}
	return g, nil
}

// The registry is a prometheus.Collector: the counts live in the tables'
// shards and the limiters, read when scraped.
var (
	decisionsDesc = prometheus.NewDesc("zerohop_ratelimit_decisions_total",
		"Rate limit decisions, by limit and outcome: allowed, rejected, shadow_rejected; for global limits also local_reject (refused without asking Redis), error_open and error_closed (Redis failed; the on_error policy decided).",
		[]string{"limit", "outcome"}, nil)
	redisErrorsDesc = prometheus.NewDesc("zerohop_ratelimit_redis_errors_total",
		"Round trips of global rate limits to Redis that failed or timed out.", []string{"limit"}, nil)
	evictionsDesc = prometheus.NewDesc("zerohop_ratelimit_evictions_total",
		"Keys a rate limit forgot (least recently used) to stay within its max_keys.", []string{"limit"}, nil)
	keysDesc = prometheus.NewDesc("zerohop_ratelimit_keys",
		"Keys a rate limit holds in this process (for a global limit: keys refused until later).", []string{"limit"}, nil)
)

func (g *limitRegistry) Describe(ch chan<- *prometheus.Desc) {
	ch <- decisionsDesc
	ch <- redisErrorsDesc
	ch <- evictionsDesc
	ch <- keysDesc
}

func (g *limitRegistry) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, l := range g.current {
		v, ev, keys, re := l.values()
		if r := g.retired[name]; r != nil {
			for i := range v {
				v[i] += r.decisions[i]
			}
			ev, re = ev+r.evictions, re+r.redisErrs
		}
		for i, n := range v {
			if l.global == nil && i > oShadowRejected {
				break // outcomes of global limits only
			}
			ch <- prometheus.MustNewConstMetric(decisionsDesc, prometheus.CounterValue, float64(n), name, outcomeLabels[i])
		}
		if l.global != nil {
			ch <- prometheus.MustNewConstMetric(redisErrorsDesc, prometheus.CounterValue, float64(re), name)
		}
		ch <- prometheus.MustNewConstMetric(evictionsDesc, prometheus.CounterValue, float64(ev), name)
		ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, float64(keys), name)
	}
}

// retire keeps the counts of l, which a reload replaces or removes.
func (g *limitRegistry) retire(l *limiter) {
	v, ev, _, re := l.values()
	r := g.retired[l.name]
	if r == nil {
		r = &limitCounts{}
		g.retired[l.name] = r
	}
	for i := range v {
		r.decisions[i] += v[i]
	}
	r.evictions += ev
	r.redisErrs += re
}

// build returns the limits of cfg, reusing the limiters of the
// configuration in use whose settings are the same. Nothing changes until
// commit: a configuration that fails to compile leaves the registry as
// it was.
func (g *limitRegistry) build(cfg *config.Config, now func() time.Time) (limitSet, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	set := limitSet{}
	for _, lc := range cfg.Limits {
		var rp redisPool
		if lc.Global != nil {
			rp = redisPool{lc.Global.Redis, lc.Global.Timeout}
		}
		if old := g.current[lc.Name]; old != nil && reflect.DeepEqual(old.cfg, lc) {
			set[lc.Name] = old
			continue
		}
		l, err := g.newLimiter(lc, rp, now)
		if err != nil {
			return nil, err
		}
		set[lc.Name] = l
	}
	return set, nil
}

// commit makes set, which the proxy now uses, the registry's: the counts
// of the limiters it replaces are kept, and Redis pools no limit uses
// any more are closed once in-flight decisions are done.
func (g *limitRegistry) commit(set limitSet) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, old := range g.current {
		if set[name] != old {
			g.retire(old)
		}
	}
	used := map[redisPool]bool{}
	for _, l := range set {
		if gl := l.cfg.Global; gl != nil {
			used[redisPool{gl.Redis, gl.Timeout}] = true
		}
	}
	for rp, c := range g.clients {
		if !used[rp] {
			delete(g.clients, rp)
			time.AfterFunc(30*time.Second, func() { c.Close() })
		}
	}
	g.current = set
}

func (g *limitRegistry) newLimiter(lc config.Limit, rp redisPool, now func() time.Time) (*limiter, error) {
	rule := ratelimit.Rule{Interval: int64(lc.Interval()), Burst: lc.EffectiveBurst()}
	l := &limiter{
		cfg: lc, name: lc.Name, key: lc.Key, header: http.CanonicalHeaderKey(lc.Header), shadow: lc.Shadow,
		log: g.log,
	}
	l.clock.Store(&limitClock{now: now, epoch: now()})
	l.policy, l.rlPrefix = policyFields(lc)
	if lc.Global == nil {
		l.table = ratelimit.NewTable(rule, lc.MaxKeys)
		return l, nil
	}
	c := g.clients[rp]
	if c == nil {
		c = newLimitRedis(rp)
		g.clients[rp] = c
	}
	l.global = ratelimit.NewGlobal(c, lc.Name, rule, lc.MaxKeys, lc.Global.OnError != config.FailClosed)
	l.table = l.global.Local()
	return l, nil
}

// newLimitRedis returns a pooled client that gives up on a decision after
// the limit's timeout (dialling, waiting for a pooled connection, writing
// and reading alike) and never retries, not even a dial: past the
// timeout the on_error policy decides. Each decision's context carries
// the timeout too (limiter.decide), the bound of the whole round trip.
func newLimitRedis(rp redisPool) redis.UniversalClient {
	r, t := rp.r, rp.timeout
	if r.Cluster {
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: []string{r.Address}, Username: r.Username, Password: r.Password, PoolSize: r.PoolSize,
			DialTimeout: t, ReadTimeout: t, WriteTimeout: t, PoolTimeout: t, MaxRetries: -1,
			DialerRetries: 1, ContextTimeoutEnabled: true,
		})
	}
	return redis.NewClient(&redis.Options{
		Addr: r.Address, DB: r.DB, Username: r.Username, Password: r.Password, PoolSize: r.PoolSize,
		DialTimeout: t, ReadTimeout: t, WriteTimeout: t, PoolTimeout: t, MaxRetries: -1,
		DialerRetries: 1, ContextTimeoutEnabled: true,
	})
}

// close closes the Redis pools.
func (g *limitRegistry) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for rp, c := range g.clients {
		c.Close()
		delete(g.clients, rp)
	}
}

// policyFields returns the RateLimit-Policy value of lc and the start of
// its RateLimit value (draft-ietf-httpapi-ratelimit-headers-11: a policy
// is a String item with q, the quota, and w, the window in whole
// seconds). A period that is not a whole number of seconds is announced
// over the next whole second, with the quota scaled to it.
func policyFields(lc config.Limit) (policy, rlPrefix string) {
	w := max(int64((lc.Period+time.Second-1)/time.Second), 1)
	q := lc.Rate
	if time.Duration(w)*time.Second != lc.Period {
		q = int64(float64(lc.Rate) * float64(time.Duration(w)*time.Second) / float64(lc.Period))
	}
	name := strconv.Quote(lc.Name) // names are [A-Za-z0-9_.-]: a valid sf-string
	return fmt.Sprintf("%s;q=%d;w=%d", name, q, w), name + ";r=0;t="
}
