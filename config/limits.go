package config

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Limit is a named rate limit (the top-level limits list). A limit
// applies to the requests of the routes and listeners that name it in
// their rate_limits; its buckets belong to the limit, so two routes
// naming one limit share its buckets (define two limits to count them
// apart). Each bucket is a token bucket holding up to Burst requests and
// refilled at Rate per Period, one per key (see Key). A refused request
// is answered 429 with Retry-After and the RateLimit-Policy and
// RateLimit fields (docs/limits.md).
//
//	limits:
//	  - name: per-client
//	    rate: 100
//	    period: 1s
//	    burst: 200
//	    key: client_address
//	  - name: per-tenant
//	    rate: 6000
//	    period: 1m
//	    key: header
//	    header: X-Tenant-Id
//	    global: {redis: {address: "redis.infra:6379"}, timeout: 20ms, on_error: open}
//	routes:
//	  - {name: api, cluster: api, rate_limits: [per-client, per-tenant]}
type Limit struct {
	// Name identifies the limit in rate_limits lists, metrics, the access
	// log and the RateLimit fields. Required, unique.
	Name string `yaml:"name"`
	// Rate is how many requests a key may make per Period. Required, > 0.
	Rate int64 `yaml:"rate"`
	// Period is the time Rate is counted over. Default 1s.
	Period time.Duration `yaml:"period"`
	// Burst is how many requests a key that has been quiet may make at
	// once (the bucket's size). Default 0 = Rate.
	Burst int64 `yaml:"burst"`
	// Key says what a bucket is kept for: "client_address" (the client's
	// IP address, default), "header" (the value of the request field
	// Header: an API key, a tenant id), "consumer" (who the authentication
	// filter said the caller is; to limit by a JWT claim, map the claim to
	// the consumer) or "all" (one bucket for every request the limit
	// applies to). Requests without the key (no such field, no consumer)
	// share one bucket of their own: they are limited together, never let
	// through unlimited.
	Key LimitKey `yaml:"key"`
	// Header is the request field whose value is the key, with key:
	// header. Required then, and only then.
	Header string `yaml:"header"`
	// Shadow counts the requests the limit would refuse
	// (zerohop_ratelimit_decisions_total{outcome="shadow_rejected"})
	// without refusing them: to try a limit on real traffic. Default
	// false.
	Shadow bool `yaml:"shadow"`
	// MaxKeys bounds the keys the limit remembers in this process; one
	// not used recently (CLOCK, an approximation of least recently used)
	// is forgotten to make room (it starts again with a full bucket),
	// counted in zerohop_ratelimit_evictions_total. About 150 bytes a key,
	// plus the key. Default 100000. For a global limit it bounds the keys
	// remembered as refused (the local pre-check).
	MaxKeys int `yaml:"max_keys"`
	// Global, if set, keeps the limit's buckets in Redis, shared by every
	// sidecar using the same Redis and limit name, instead of in this
	// process. Default nil: a local limit, per process.
	Global *GlobalLimit `yaml:"global,omitempty"`
}

// LimitKey is what a limit's buckets are kept for.
type LimitKey string

// Limit keys.
const (
	KeyClientAddress LimitKey = "client_address"
	KeyHeader        LimitKey = "header"
	KeyConsumer      LimitKey = "consumer"
	KeyAll           LimitKey = "all"
)

// GlobalLimit is where a global limit keeps its buckets, and what it does
// when it cannot reach them.
type GlobalLimit struct {
	// Redis is the server. Required.
	Redis LimitRedis `yaml:"redis"`
	// Timeout bounds one decision's round trip to Redis (and connecting);
	// past it, OnError decides. Default 50ms.
	Timeout time.Duration `yaml:"timeout"`
	// OnError is what a request gets when Redis cannot answer in time:
	// "open" (allowed, counted as error_open; default: a Redis outage does
	// not take the API down) or "closed" (refused with 429, counted as
	// error_closed).
	OnError LimitOnError `yaml:"on_error"`
}

// LimitOnError is a global limit's policy when Redis fails.
type LimitOnError string

// Failure policies.
const (
	FailOpen   LimitOnError = "open"
	FailClosed LimitOnError = "closed"
)

// LimitRedis is a Redis server (or cluster) for global limits. Limits
// with the same settings share one connection pool.
type LimitRedis struct {
	// Address is host:port. Required.
	Address string `yaml:"address"`
	// Cluster says Address is a node of a Redis Cluster (the others are
	// discovered). Each limit's keys carry the hash tag {name}, so they
	// live in one slot. Default false.
	Cluster bool `yaml:"cluster"`
	// DB is the database number (not with Cluster). Default 0.
	DB int `yaml:"db"`
	// Username for Redis ACL auth. Default "".
	Username string `yaml:"username"`
	// Password for Redis auth. Default "".
	Password string `yaml:"password"`
	// PoolSize is the most connections to Redis (per node). Default 0 =
	// go-redis's default, 10 per CPU.
	PoolSize int `yaml:"pool_size"`
}

// DefaultLimitMaxKeys is limits[].max_keys.
const DefaultLimitMaxKeys = 100_000

func (l *Limit) setDefaults() {
	l.Period = time.Second
	l.Key = KeyClientAddress
	l.MaxKeys = DefaultLimitMaxKeys
}

func (g *GlobalLimit) setDefaults() {
	g.Timeout = 50 * time.Millisecond
	g.OnError = FailOpen
}

// EffectiveBurst is Burst, or Rate when Burst is 0.
func (l *Limit) EffectiveBurst() int64 {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

// Interval is the time one request costs: Period/Rate.
func (l *Limit) Interval() time.Duration {
	if l.Rate <= 0 {
		return 0
	}
	return time.Duration(int64(l.Period) / l.Rate)
}

// limits checks the limits and returns their names.
func (v *validator) limits(ls []Limit) map[string]string {
	names := map[string]string{}
	for i := range ls {
		l := &ls[i]
		p := fmt.Sprintf("limits[%d]", i)
		v.name(p+".name", "limit", l.Name, names)
		if l.Rate <= 0 {
			v.errorf(p+".rate", "must be greater than 0 (requests per period), got %d", l.Rate)
		}
		v.positive(p+".period", l.Period)
		if l.Burst < 0 {
			v.errorf(p+".burst", "must not be negative (0 means rate), got %d", l.Burst)
		}
		if l.Rate > 0 && l.Period > 0 {
			iv := int64(l.Period) / l.Rate
			min := int64(1)
			if l.Global != nil {
				min = int64(time.Microsecond) // Redis counts in microseconds
			}
			if iv < min {
				v.errorf(p+".rate", "%d per %v is more than one request per %v", l.Rate, l.Period, time.Duration(min))
			} else if float64(iv)*float64(l.EffectiveBurst()) > math.MaxInt64/4 {
				v.errorf(p+".burst", "burst %d of one request per %v is too long a time to count", l.EffectiveBurst(), time.Duration(iv))
			}
		}
		switch l.Key {
		case KeyClientAddress, KeyConsumer, KeyAll:
			if l.Header != "" {
				v.errorf(p+".header", "only with key: header (key is %q)", l.Key)
			}
		case KeyHeader:
			if !isToken(l.Header) {
				v.errorf(p+".header", "required with key: header: the request field whose value is the key, e.g. X-Api-Key")
			}
		default:
			v.errorf(p+".key", "invalid key %q: must be %q, %q, %q or %q", l.Key, KeyClientAddress, KeyHeader, KeyConsumer, KeyAll)
		}
		if l.MaxKeys < 1 {
			v.errorf(p+".max_keys", "must be at least 1, got %d", l.MaxKeys)
		}
		if g := l.Global; g != nil {
			v.globalLimit(p+".global", g)
		}
	}
	return names
}

func (v *validator) globalLimit(p string, g *GlobalLimit) {
	r := g.Redis
	if r.Address == "" {
		v.errorf(p+".redis.address", "required: host:port of the Redis server")
	} else if err := checkAddress(r.Address); err != nil {
		v.errorf(p+".redis.address", "%v", err)
	}
	if r.DB < 0 {
		v.errorf(p+".redis.db", "must not be negative, got %d", r.DB)
	} else if r.DB != 0 && r.Cluster {
		v.errorf(p+".redis.db", "a Redis Cluster has only database 0")
	}
	if r.PoolSize < 0 {
		v.errorf(p+".redis.pool_size", "must not be negative (0 means go-redis's default), got %d", r.PoolSize)
	}
	v.positive(p+".timeout", g.Timeout)
	switch g.OnError {
	case FailOpen, FailClosed:
	default:
		v.errorf(p+".on_error", "invalid on_error %q: must be %q or %q", g.OnError, FailOpen, FailClosed)
	}
}

// rateLimits checks a route's or listener's rate_limits list.
func (v *validator) rateLimits(p string, names []string, limits map[string]string) {
	seen := map[string]bool{}
	for i, n := range names {
		ep := fmt.Sprintf("%s[%d]", p, i)
		switch _, ok := limits[n]; {
		case seen[n]:
			v.errorf(ep, "limit %q is listed twice", n)
		case !ok && !v.failedUnder("limits"):
			v.errorf(ep, "unknown limit %q%s", n, suggestLimit(n, limits))
		}
		seen[n] = true
	}
}

func suggestLimit(name string, defined map[string]string) string {
	if len(defined) == 0 {
		return "; no limits are defined (the top-level limits list)"
	}
	return strings.Replace(suggestName(name, defined), "defined clusters", "defined limits", 1)
}

// limitRefs checks the routes' and listeners' rate_limits.
func (v *validator) limitRefs(c *Config, limits map[string]string) {
	for i, l := range c.Listeners {
		v.rateLimits(fmt.Sprintf("listeners[%d].rate_limits", i), l.RateLimits, limits)
	}
	for i, r := range c.Routes {
		v.rateLimits(fmt.Sprintf("routes[%d].rate_limits", i), r.RateLimits, limits)
	}
}

// limitWarnings names limits no route or listener applies: defined,
// enforcing nothing.
func (c *Config) limitWarnings() []string {
	used := map[string]bool{}
	for _, l := range c.Listeners {
		for _, n := range l.RateLimits {
			used[n] = true
		}
	}
	for _, r := range c.Routes {
		for _, n := range r.RateLimits {
			used[n] = true
		}
	}
	var ws []string
	for i, l := range c.Limits {
		if !used[l.Name] {
			ws = append(ws, fmt.Sprintf("limits[%d]: limit %q is not named in any route's or listener's rate_limits: it limits nothing", i, l.Name))
		}
	}
	return ws
}
