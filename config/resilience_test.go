package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// twoClusters is a file with clusters api and canary, and a route r
// whose keys the cases append.
var twoClusters = lines(
	"clusters:",
	"  - name: api",
	"    endpoints: [{url: 'http://10.0.0.7:8080'}]",
	"  - name: canary",
	"    endpoints: [{url: 'http://10.0.0.8:8080'}]",
	"routes:",
	"  - name: r",
)

func TestTrafficAndRetryConfig(t *testing.T) {
	_, err := Parse("z.yaml", []byte(twoClusters+lines(
		"    weighted_clusters: [{cluster: api, weight: 90}, {cluster: canary, weight: 10}]",
		"    split_sticky: {cookie: session}",
		"    mirror: {cluster: canary}",
		"    retries: {retry_on: [gateway-error, '429', 500]}",
	)))
	if err == nil {
		t.Fatal("429 accepted as a retry status")
	}
	c, err := Parse("z.yaml", []byte(twoClusters+lines(
		"    weighted_clusters: [{cluster: api, weight: 90}, {cluster: canary, weight: 10}]",
		"    split_sticky: {cookie: session}",
		"    mirror: {cluster: canary}",
		"    retries: {retry_on: [gateway-error, 500]}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Routes[0]
	if m := r.Mirror; m.Percent != 100 || m.MaxConcurrent != 64 || m.Timeout != DefaultMirrorTimeout {
		t.Errorf("mirror defaults %+v", m)
	}
	if p := r.Retries; p.Attempts != 1 || p.BackoffBase != 25*time.Millisecond || p.BackoffMax != 250*time.Millisecond ||
		p.MaxBody != 64*KiB || p.PerTryTimeout != 0 || strings.Join(p.RetryOn, ",") != "gateway-error,500" {
		t.Errorf("retry defaults %+v", p)
	}
	if cb := c.Clusters[0].CircuitBreakers; cb != (CircuitBreakers{}) {
		t.Errorf("breaker defaults %+v; want no limits", cb)
	}
	c, err = Parse("z.yaml", []byte(lines("clusters:", "  - name: api", "    endpoints: [{url: 'http://a'}]",
		"    circuit_breakers: {retry_budget: {}}", "    retries: {}")))
	if err != nil {
		t.Fatal(err)
	}
	if rb := c.Clusters[0].CircuitBreakers.RetryBudget; rb.BudgetPercent != 20 || rb.MinRetryConcurrency != 3 {
		t.Errorf("retry budget defaults %+v", rb)
	}
	if p := c.Clusters[0].Retries; strings.Join(p.RetryOn, ",") != "connect-failure,reset" {
		t.Errorf("retry_on default %v", p.RetryOn)
	}
}

func TestBadTrafficAndRetryConfigs(t *testing.T) {
	for _, tt := range []struct{ name, yaml, want string }{
		{"cluster and split", twoClusters + lines("    cluster: api", "    weighted_clusters: [{cluster: canary, weight: 1}]"),
			"z.yaml:9: routes[0].weighted_clusters: set either cluster or weighted_clusters, not both"},
		{"neither", twoClusters + lines("    match: {path_prefix: /}"),
			"routes[0].cluster: required: name the cluster this route sends to"},
		{"unknown split cluster", twoClusters + lines("    weighted_clusters: [{cluster: canry, weight: 1}]"),
			`z.yaml:8: routes[0].weighted_clusters[0].cluster: unknown cluster "canry" (did you mean "canary"?)`},
		{"zero weight", twoClusters + lines("    weighted_clusters: [{cluster: api, weight: 0}]"),
			"routes[0].weighted_clusters[0].weight: must be between 1 and 1000000, got 0"},
		{"missing weight", twoClusters + lines("    weighted_clusters: [{cluster: api}]"),
			"routes[0].weighted_clusters[0].weight: must be between 1 and 1000000, got 0"},
		{"negative weight", twoClusters + lines("    weighted_clusters: [{cluster: api, weight: -5}]"),
			"routes[0].weighted_clusters[0].weight: must be between 1 and 1000000, got -5"},
		{"side twice", twoClusters + lines("    weighted_clusters:", "      - {cluster: api, weight: 1}", "      - {cluster: api, weight: 2}"),
			`z.yaml:10: routes[0].weighted_clusters[1].cluster: cluster "api" is already a side of this split (first defined at line 9)`},
		{"sticky without split", twoClusters + lines("    cluster: api", "    split_sticky: {header: X-U}"),
			"routes[0].split_sticky: needs weighted_clusters"},
		{"sticky both", twoClusters + lines("    weighted_clusters: [{cluster: api, weight: 1}]", "    split_sticky: {header: X-U, cookie: c}"),
			"routes[0].split_sticky: set exactly one of header and cookie"},
		{"sticky bad header", twoClusters + lines("    weighted_clusters: [{cluster: api, weight: 1}]", "    split_sticky: {header: 'X U'}"),
			`routes[0].split_sticky.header: invalid field name "X U"`},
		{"mirror unknown", twoClusters + lines("    cluster: api", "    mirror: {cluster: nope}"),
			`routes[0].mirror.cluster: unknown cluster "nope"`},
		{"mirror percent", twoClusters + lines("    cluster: api", "    mirror: {cluster: canary, percent: 150}"),
			"routes[0].mirror.percent: must be more than 0 and at most 100, got 150"},
		{"mirror concurrency", twoClusters + lines("    cluster: api", "    mirror: {cluster: canary, max_concurrent: 0}"),
			"routes[0].mirror.max_concurrent: must be positive, got 0"},
		{"retry_on unknown", twoClusters + lines("    cluster: api", "    retries: {retry_on: [connect-fail]}"),
			`z.yaml:9: routes[0].retries.retry_on[0]: unknown retry condition "connect-fail"`},
		{"retry_on 404", twoClusters + lines("    cluster: api", "    retries: {retry_on: [404]}"),
			`routes[0].retries.retry_on[0]: unknown retry condition "404"`},
		{"attempts", twoClusters + lines("    cluster: api", "    retries: {attempts: 11}"),
			"routes[0].retries.attempts: must be between 0 and 10, got 11"},
		{"backoff order", twoClusters + lines("    cluster: api", "    retries: {backoff_base: 1s, backoff_max: 100ms}"),
			"routes[0].retries.backoff_max: must be at least backoff_base (1s), got 100ms"},
		{"backoff zero", twoClusters + lines("    cluster: api", "    retries: {backoff_base: 0s}"),
			"routes[0].retries.backoff_base: must be greater than 0, got 0s"},
		{"negative breaker", lines("clusters:", "  - name: api", "    endpoints: [{url: 'http://a'}]", "    circuit_breakers: {max_requests: -1}"),
			"z.yaml:4: clusters[0].circuit_breakers.max_requests: must not be negative, got -1"},
		{"budget percent", lines("clusters:", "  - name: api", "    endpoints: [{url: 'http://a'}]", "    circuit_breakers: {retry_budget: {budget_percent: 120}}"),
			"clusters[0].circuit_breakers.retry_budget.budget_percent: must be between 0 and 100, got 120"},
		{"cluster retries", lines("clusters:", "  - name: api", "    endpoints: [{url: 'http://a'}]", "    retries: {per_try_timeout: -1s}"),
			`z.yaml:4: clusters[0].retries.per_try_timeout: invalid duration "-1s"`},
		{"breaker typo", lines("clusters:", "  - name: api", "    endpoints: [{url: 'http://a'}]", "    circuit_breakers: {max_request: 5}"),
			`clusters[0].circuit_breakers.max_request: unknown field (did you mean "max_requests"?)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("z.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			var list ErrorList
			if errors.As(err, &list) && len(list) != 1 {
				t.Errorf("got %d errors, want 1:\n%v", len(list), err)
			}
		})
	}
}

// TestSplitCredentialsMustAgree: the sides of a split share their
// outbound credentials, or the configuration is refused where it says so.
func TestSplitCredentialsMustAgree(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "token")
	if err := os.WriteFile(secret, []byte("s3cret-token-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := lines("clusters:",
		"  - {name: a, endpoints: [{url: 'http://a'}], credentials: {type: bearer, file: "+secret+"}}",
		"  - {name: b, endpoints: [{url: 'http://b'}]}",
		"  - {name: c, endpoints: [{url: 'http://c'}], credentials: {type: bearer, file: "+secret+"}}",
		"routes:")
	_, err := Parse("zerohop.yaml", []byte(base+lines("  - {name: r, weighted_clusters: [{cluster: a, weight: 9}, {cluster: b, weight: 1}]}")))
	if err == nil || !strings.Contains(err.Error(), "zerohop.yaml:6: routes[0].weighted_clusters[1].cluster: cluster \"b\" has other outbound credentials") {
		t.Errorf("a split over clusters with different credentials: %v", err)
	}
	if _, err := Parse("zerohop.yaml", []byte(base+lines("  - {name: r, weighted_clusters: [{cluster: a, weight: 9}, {cluster: c, weight: 1}]}"))); err != nil {
		t.Errorf("a split over clusters with the same credentials: %v", err)
	}
}
