package config

import (
	"strings"
	"testing"
	"time"
)

// TestLimitsDefaults: a limit with only a name and a rate gets the
// documented defaults.
func TestLimitsDefaults(t *testing.T) {
	c, err := Load(writeConfig(t, t.TempDir(), validTail+lines(
		"    rate_limits: [l]",
		"limits:",
		"  - {name: l, rate: 50}",
		"  - {name: g, rate: 5, global: {redis: {address: '127.0.0.1:6379'}}}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Limits[0]
	if l.Period != time.Second || l.EffectiveBurst() != 50 || l.Key != KeyClientAddress || l.MaxKeys != DefaultLimitMaxKeys ||
		l.Shadow || l.Global != nil || l.Interval() != 20*time.Millisecond {
		t.Errorf("defaults: %+v", l)
	}
	if g := c.Limits[1].Global; g == nil || g.Timeout != 50*time.Millisecond || g.OnError != FailOpen || g.Redis.DB != 0 {
		t.Errorf("global defaults: %+v", g)
	}
	if got := c.Routes[0].RateLimits; len(got) != 1 || got[0] != "l" {
		t.Errorf("routes[0].rate_limits %v", got)
	}
}

// TestLimitsBad: every malformed limit is refused with the file, line
// and field, never accepted and ignored.
func TestLimitsBad(t *testing.T) {
	for _, tt := range []struct{ name, yaml, want string }{
		{"no name", lines("limits:", "  - {rate: 1}"), `zerohop.yaml:2: limits[0].name: limit name is required`},
		{"duplicate", lines("limits:", "  - {name: a, rate: 1}", "  - {name: a, rate: 2}"),
			`zerohop.yaml:3: limits[1].name: duplicate limit name "a" (first defined at line 2)`},
		{"zero rate", lines("limits:", "  - {name: a, rate: 0}"), `zerohop.yaml:2: limits[0].rate: must be greater than 0`},
		{"negative rate", lines("limits:", "  - {name: a, rate: -5}"), `limits[0].rate: must be greater than 0 (requests per period), got -5`},
		{"rate not a number", lines("limits:", "  - {name: a, rate: lots}"), `zerohop.yaml:2: limits[0].rate: expected an integer`},
		{"zero period", lines("limits:", "  - {name: a, rate: 1, period: 0s}"), `limits[0].period: must be greater than 0, got 0s`},
		{"too fast", lines("limits:", "  - {name: a, rate: 2000000000, period: 1s}"), `limits[0].rate: 2000000000 per 1s is more than one request per 1ns`},
		{"too fast for redis", lines("limits:", "  - {name: a, rate: 2000000, global: {redis: {address: 'r:1'}}}"),
			`limits[0].rate: 2000000 per 1s is more than one request per 1µs`},
		{"negative burst", lines("limits:", "  - {name: a, rate: 1, burst: -1}"), `limits[0].burst: must not be negative (0 means rate), got -1`},
		{"huge burst", lines("limits:", "  - {name: a, rate: 1, period: 1000h, burst: 9000000000}"), `limits[0].burst: burst 9000000000`},
		{"bad key", lines("limits:", "  - {name: a, rate: 1, key: ip}"), `limits[0].key: invalid key "ip": must be "client_address", "header", "consumer" or "all"`},
		{"header without key header", lines("limits:", "  - {name: a, rate: 1, header: X-A}"), `limits[0].header: only with key: header (key is "client_address")`},
		{"key header without header", lines("limits:", "  - {name: a, rate: 1, key: header}"), `limits[0].header: required with key: header`},
		{"bad header name", lines("limits:", "  - {name: a, rate: 1, key: header, header: 'X A'}"), `limits[0].header: required with key: header`},
		{"max keys", lines("limits:", "  - {name: a, rate: 1, max_keys: 0}"), `limits[0].max_keys: must be at least 1, got 0`},
		{"unknown field", lines("limits:", "  - {name: a, rate: 1, windw: 1s}"), `zerohop.yaml:2: limits[0].windw: unknown field`},
		{"global without address", lines("limits:", "  - {name: a, rate: 1, global: {}}"), `limits[0].global.redis.address: required`},
		{"global bad address", lines("limits:", "  - {name: a, rate: 1, global: {redis: {address: nope}}}"), `limits[0].global.redis.address: invalid address "nope"`},
		{"global db in cluster", lines("limits:", "  - {name: a, rate: 1, global: {redis: {address: 'r:1', cluster: true, db: 2}}}"),
			`limits[0].global.redis.db: a Redis Cluster has only database 0`},
		{"global timeout", lines("limits:", "  - {name: a, rate: 1, global: {redis: {address: 'r:1'}, timeout: 0s}}"), `limits[0].global.timeout: must be greater than 0`},
		{"global on_error", lines("limits:", "  - {name: a, rate: 1, global: {redis: {address: 'r:1'}, on_error: maybe}}"),
			`limits[0].global.on_error: invalid on_error "maybe": must be "open" or "closed"`},
		{"global pool", lines("limits:", "  - {name: a, rate: 1, global: {redis: {address: 'r:1', pool_size: -1}}}"), `limits[0].global.redis.pool_size: must not be negative`},
		{"route names unknown limit", validTail + lines("    rate_limits: [per-clent]", "limits:", "  - {name: per-client, rate: 1}"),
			`zerohop.yaml:7: routes[0].rate_limits[0]: unknown limit "per-clent" (did you mean "per-client"?)`},
		{"route names a limit when none", validTail + lines("    rate_limits: [x]"),
			`routes[0].rate_limits[0]: unknown limit "x"; no limits are defined (the top-level limits list)`},
		{"route lists twice", validTail + lines("    rate_limits: [a, a]", "limits:", "  - {name: a, rate: 1}"),
			`routes[0].rate_limits[1]: limit "a" is listed twice`},
		{"listener names unknown limit", lines("listeners:", "  - {name: in, rate_limits: [zzzz]}", "limits:", "  - {name: a, rate: 1}"),
			`zerohop.yaml:2: listeners[0].rate_limits[0]: unknown limit "zzzz"; defined limits: a`},
		{"rate_limits not a list", validTail + lines("    rate_limits: a"), `routes[0].rate_limits: expected a list`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, t.TempDir(), tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// TestLimitsUnusedWarning: a limit nothing applies is valid, and warned
// about.
func TestLimitsUnusedWarning(t *testing.T) {
	c, err := Load(writeConfig(t, t.TempDir(), validTail+lines("    rate_limits: [used]", "limits:",
		"  - {name: used, rate: 1}", "  - {name: forgotten, rate: 1}")))
	if err != nil {
		t.Fatal(err)
	}
	ws := c.Warnings()
	if len(ws) != 1 || !strings.Contains(ws[0], `limits[1]: limit "forgotten" is not named`) {
		t.Errorf("warnings %q; want one for the unused limit", ws)
	}
}
