package config

import (
	"strings"
	"testing"
	"time"
)

// TestBalancingKeys: a file with every load-balancing key decodes to what
// it says, and sections left out keep their documented defaults.
func TestBalancingKeys(t *testing.T) {
	c, err := Parse("zerohop.yaml", []byte(lines(
		"clusters:",
		"  - name: a",
		"    endpoints: [{url: 'http://a:1'}, {url: 'http://b:1'}]",
		"    lb_policy: round_robin",
		"    health_check: {path: /healthz}",
		"    outlier_detection: {}",
		"  - name: b",
		"    endpoints: [{url: 'http://a:1'}]",
	)))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Clusters[0], c.Clusters[1]
	if a.LBPolicy != LBRoundRobin || a.PanicThreshold != DefaultPanicThreshold {
		t.Errorf("cluster a: policy %q, panic threshold %d", a.LBPolicy, a.PanicThreshold)
	}
	hc := a.HealthCheck
	if hc.Path != "/healthz" || hc.Interval != 10*time.Second || hc.Timeout != 2*time.Second || hc.HealthyThreshold != 2 ||
		hc.UnhealthyThreshold != 3 || len(hc.ExpectedStatuses) != 1 || hc.ExpectedStatuses[0] != 200 || hc.Jitter != 0 {
		t.Errorf("health check defaults: %+v", hc)
	}
	od := a.OutlierDetection
	if *od != (OutlierDetection{Consecutive5xx: 5, ConsecutiveGatewayFailure: 5, BaseEjectionTime: 30 * time.Second,
		MaxEjectionPercent: 10}) || od.EffectiveMaxEjectionTime() != 300*time.Second {
		t.Errorf("outlier detection defaults: %+v", od)
	}
	long := OutlierDetection{BaseEjectionTime: 10 * time.Minute}
	if got := long.EffectiveMaxEjectionTime(); got != 10*time.Minute {
		t.Errorf("max_ejection_time for a 10m base: %v, want the base", got)
	}
	if b.LBPolicy != "" || b.HealthCheck != nil || b.OutlierDetection != nil {
		t.Errorf("cluster b: %+v", b)
	}
}

func TestBalancingErrors(t *testing.T) {
	head := []string{"clusters:", "  - name: a", "    endpoints: [{url: 'http://a:1'}]"}
	for _, tc := range []struct {
		name string
		yaml []string
		want string
	}{
		{"unknown policy", []string{"    lb_policy: fastest"},
			`zerohop.yaml:4: clusters[0].lb_policy: invalid lb_policy "fastest": must be "random", "round_robin", "least_request" or "maglev"`},
		{"maglev without key", []string{"    lb_policy: maglev"},
			`zerohop.yaml:2: clusters[0].hash_policy: lb_policy "maglev" needs a hash_policy with exactly one of header, cookie or source_address`},
		{"two keys", []string{"    lb_policy: maglev", "    hash_policy: {header: X-U, source_address: true}"},
			`zerohop.yaml:5: clusters[0].hash_policy: lb_policy "maglev" needs a hash_policy`},
		{"bad header", []string{"    lb_policy: maglev", "    hash_policy: {header: 'X U'}"},
			`zerohop.yaml:5: clusters[0].hash_policy.header: invalid header name "X U"`},
		{"hash without maglev", []string{"    hash_policy: {cookie: sid}"},
			`zerohop.yaml:4: clusters[0].hash_policy: only for lb_policy "maglev"`},
		{"panic threshold", []string{"    panic_threshold: 101"},
			`zerohop.yaml:4: clusters[0].panic_threshold: must be a percentage from 0 to 100, got 101`},
		{"no path", []string{"    health_check: {interval: 1s}"},
			`zerohop.yaml:4: clusters[0].health_check.path: must be a request path starting with "/"`},
		{"zero interval", []string{"    health_check:", "      path: /h", "      interval: 0s"},
			`zerohop.yaml:6: clusters[0].health_check.interval: must be greater than 0, got 0s`},
		{"zero threshold", []string{"    health_check: {path: /h, unhealthy_threshold: 0}"},
			`zerohop.yaml:4: clusters[0].health_check.unhealthy_threshold: must be at least 1, got 0`},
		{"bad status", []string{"    health_check:", "      path: /h", "      expected_statuses: [200, 700]"},
			`zerohop.yaml:6: clusters[0].health_check.expected_statuses[1]: must be a status from 100 to 599, got 700`},
		{"no statuses", []string{"    health_check: {path: /h, expected_statuses: []}"},
			`zerohop.yaml:4: clusters[0].health_check.expected_statuses: must list at least one status`},
		{"bad host", []string{"    health_check: {path: /h, host: 'a b'}"},
			`zerohop.yaml:4: clusters[0].health_check.host: invalid host "a b"`},
		{"negative detector", []string{"    outlier_detection: {consecutive_5xx: -1}"},
			`zerohop.yaml:4: clusters[0].outlier_detection.consecutive_5xx: must not be negative, got -1`},
		{"max below base", []string{"    outlier_detection:", "      base_ejection_time: 1m", "      max_ejection_time: 10s"},
			`zerohop.yaml:6: clusters[0].outlier_detection.max_ejection_time: must be at least base_ejection_time (1m0s), got 10s`},
		{"ejection percent", []string{"    outlier_detection: {max_ejection_percent: 200}"},
			`zerohop.yaml:4: clusters[0].outlier_detection.max_ejection_percent: must be a percentage from 0 to 100, got 200`},
		{"negative refresh", []string{"    dns_refresh: -1s"},
			`zerohop.yaml:4: clusters[0].dns_refresh: invalid duration "-1s": must not be negative`},
		{"resolver without refresh", []string{"    dns_resolver: '127.0.0.1:53'"},
			`zerohop.yaml:4: clusters[0].dns_resolver: only with dns_refresh`},
		{"bad resolver", []string{"    dns_refresh: 5s", "    dns_resolver: 'dns'"},
			`zerohop.yaml:5: clusters[0].dns_resolver: invalid address "dns"`},
		{"https names", []string{"  - {name: b, dns_refresh: 5s, endpoints: [{url: 'https://a.internal'}, {url: 'https://b.internal'}]}"},
			`zerohop.yaml:4: clusters[1].dns_refresh: https endpoints with different host names: set tls.server_name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("zerohop.yaml", []byte(lines(append(head[:3:3], tc.yaml...)...)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}
