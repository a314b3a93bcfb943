package ratelimit

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// gcraScript is GCRA in Redis, one round trip per decision: the key holds
// the TAT in microseconds of Redis's own clock (so pods' clocks need not
// agree), and expires when the bucket is full again. ARGV: the interval
// and the tolerance (burst*interval), in microseconds. It returns
// {1, tau-ahead} for an allowed request, {0, ahead-tau} for a refused
// one, where ahead is how far the new TAT is ahead of now.
//
// TIME in a script needs effects replication, the default since Redis 5.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local ahead = tat + interval - now
if ahead > tau then
  return {0, ahead - tau}
end
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval), 'PX', math.ceil(ahead / 1000) + 1)
return {1, tau - ahead}
`)

// Outcome is how a global decision was reached.
type Outcome uint8

const (
	Allowed     Outcome = iota // Redis allowed it
	Rejected                   // Redis refused it
	LocalReject                // refused here: Redis had refused the key until later
	ErrorOpen                  // Redis failed; allowed by policy
	ErrorClosed                // Redis failed; refused by policy
)

var outcomeNames = [...]string{"allowed", "rejected", "local_reject", "error_open", "error_closed"}

func (o Outcome) String() string { return outcomeNames[o] }

// Outcomes lists every outcome, for metrics.
var Outcomes = []Outcome{Allowed, Rejected, LocalReject, ErrorOpen, ErrorClosed}

// ErrRedis wraps what went wrong talking to Redis.
var ErrRedis = errors.New("ratelimit: redis")

// Global is a limit whose state lives in Redis, shared by every process
// that uses the same Redis and limit name. Each key is one Redis string
// under the prefix "zerohop:rl:{name}:": the hash tag puts all keys of a
// limit in one Redis Cluster slot. A local Table remembers keys Redis
// refused, and until when, so that a key over its limit is refused
// without a round trip.
type Global struct {
	c        redis.UniversalClient
	prefix   string
	interval int64 // µs
	tau      int64 // µs
	failOpen bool
	local    *Table
}

// NewGlobal returns a global limit named name with rule (its Interval in
// ns, at least 1µs) through c. maxKeys bounds the local table of refused
// keys. failOpen says what a failed round trip decides.
func NewGlobal(c redis.UniversalClient, name string, rule Rule, maxKeys int, failOpen bool) *Global {
	iv := max(rule.Interval/1000, 1)
	return &Global{
		c:        c,
		prefix:   "zerohop:rl:{" + name + "}:",
		interval: iv,
		tau:      iv * max(rule.Burst, 1),
		failOpen: failOpen,
		local:    NewTable(rule, maxKeys),
	}
}

// Local is the table of keys refused until later.
func (g *Global) Local() *Table { return g.local }

// Take decides a request of key at now (ns, the clock of the local
// table). err is set for the error outcomes.
func (g *Global) Take(ctx context.Context, key string, now int64) (Decision, Outcome, error) {
	if wait, ok := g.local.Blocked(key, now); ok {
		return Decision{Wait: wait}, LocalReject, nil
	}
	v, err := gcraScript.Run(ctx, g.c, []string{g.prefix + key}, g.interval, g.tau).Int64Slice()
	if err == nil && len(v) != 2 {
		err = fmt.Errorf("script answered %v", v)
	}
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrRedis, err)
		if g.failOpen {
			return Decision{Allowed: true}, ErrorOpen, err
		}
		return Decision{Wait: g.interval * 1000}, ErrorClosed, err
	}
	us := v[1]
	if v[0] == 0 {
		wait := us * 1000
		g.local.Block(key, now+wait)
		return Decision{Wait: wait}, Rejected, nil
	}
	return Decision{Allowed: true, Remaining: us / g.interval, Wait: (g.tau - us) * 1000}, Allowed, nil
}
