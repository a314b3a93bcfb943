package config

import (
	"fmt"
	"strconv"
	"time"
)

// Retry defaults (RetryPolicy, RetryBudget), as Envoy's.
const (
	DefaultRetryBackoffBase     = 25 * time.Millisecond
	DefaultRetryBackoffMax      = 250 * time.Millisecond
	DefaultRetryMaxBody         = 64 * KiB
	DefaultRetryBudgetPercent   = 20.0
	DefaultRetryBudgetMinActive = 3
	// MaxRetryAttempts bounds RetryPolicy.Attempts.
	MaxRetryAttempts = 10
)

// Retry conditions (RetryPolicy.RetryOn), besides status codes.
const (
	// RetryConnectFailure: the endpoint could not be connected to
	// (refused, unreachable, connect timeout). Nothing was sent.
	RetryConnectFailure = "connect-failure"
	// RetryReset: the connection failed after the request was sent and
	// before a response head arrived (reset, closed, broken framing).
	RetryReset = "reset"
	// RetryTimeout: per_try_timeout passed before the response head.
	RetryTimeout = "timeout"
	// Retry5xx: any 5xx response.
	Retry5xx = "5xx"
	// RetryGatewayError: a 502, 503 or 504 response.
	RetryGatewayError = "gateway-error"
)

// RetryPolicy says when a request that failed is sent again. It may be
// set on a cluster (the default of every route to it) and on a route
// (which replaces the cluster's policy as a whole). Only idempotent
// requests are retried: GET, HEAD, OPTIONS, TRACE, PUT and DELETE; never
// POST, PATCH or another method. A request with a body is retried only
// when the body was buffered (it fits in MaxBody) or when no byte of it
// was sent yet (the connect failed). Each retry goes, when the cluster
// has more than one endpoint, to another endpoint than the ones that
// failed, as the cluster's balancing picks it. A response that was
// retried is cached like any other.
type RetryPolicy struct {
	// Attempts is how many retries may follow the first try. Default 1
	// (Envoy's num_retries); 0 to MaxRetryAttempts.
	Attempts int `yaml:"attempts"`
	// RetryOn lists what is retried: connect-failure, reset, timeout, 5xx,
	// gateway-error (502, 503, 504) and response status codes ("503").
	// Default [connect-failure, reset]: failures that produced no
	// response, the only ones safe for every idempotent request.
	RetryOn []string `yaml:"retry_on"`
	// PerTryTimeout bounds each try's wait for the response head; a try
	// over it is abandoned and, with "timeout" in RetryOn, retried.
	// Default 0 = none (the route's timeout and the cluster's
	// response_timeout still bound the exchange).
	PerTryTimeout time.Duration `yaml:"per_try_timeout"`
	// BackoffBase is the base of the jittered exponential backoff between
	// tries: before retry n the wait is random in [0, base*2^(n-1)),
	// capped at BackoffMax ("full jitter"). Default 25ms; > 0.
	BackoffBase time.Duration `yaml:"backoff_base"`
	// BackoffMax caps each wait. Default 250ms (ten times the default
	// base); >= BackoffBase. A retried response's Retry-After (seconds
	// or an HTTP date) replaces the computed wait when it is at most
	// BackoffMax; when it asks for longer the response is passed on, not
	// retried (the upstream said it will not be ready in time).
	BackoffMax time.Duration `yaml:"backoff_max"`
	// MaxBody is the largest request body buffered so that it can be
	// sent again. Default 64KiB; 0 = bodies are never buffered (a request
	// with a body is then retried only after a connect failure).
	MaxBody Size `yaml:"max_body"`
}

func (r *RetryPolicy) setDefaults() {
	r.Attempts = 1
	r.RetryOn = []string{RetryConnectFailure, RetryReset}
	r.BackoffBase = DefaultRetryBackoffBase
	r.BackoffMax = DefaultRetryBackoffMax
	r.MaxBody = DefaultRetryMaxBody
}

// CircuitBreakers are a cluster's limits, as Envoy's circuit breaker
// thresholds. A request over a limit is answered at once with 503 and
// the field "X-Zerohop-Reason: breaker_open; limit=<limit>", logged with
// decision breaker_open and counted in
// zerohop_breaker_rejections_total{cluster,limit}. 0 = no limit, the
// default for the first three: the app's own connection pool to its
// sidecar usually bounds concurrency already, and a limit that rejects
// healthy traffic is worse than none; set them to the upstream's
// capacity.
type CircuitBreakers struct {
	// MaxConnections bounds the upstream exchanges in progress at once,
	// each on its own connection (HTTP/1.1 has one exchange per
	// connection; idle pooled connections are bounded by max_idle_conns).
	// A try over it waits as a pending request. Default 0 = no limit.
	MaxConnections int `yaml:"max_connections"`
	// MaxPendingRequests bounds the tries waiting for a connection under
	// MaxConnections; one more is rejected (limit=max_pending_requests).
	// Default 0 = no limit on waiting (with MaxConnections set, tries
	// wait until the request's timeout).
	MaxPendingRequests int `yaml:"max_pending_requests"`
	// MaxRequests bounds the requests in flight to the cluster, from
	// their first try to the end of the response; one more is rejected
	// (limit=max_requests). Default 0 = no limit.
	MaxRequests int `yaml:"max_requests"`
	// MaxRetries bounds the retries in flight at once, on top of the
	// retry budget. A retry over it is not made: the failed try's answer
	// is passed on, counted in zerohop_retries_total{outcome="overflow"}.
	// Default 0 = only the budget.
	MaxRetries int `yaml:"max_retries"`
	// RetryBudget bounds retries in flight to a share of the requests in
	// flight, so a failing upstream is not hammered by retries. Default
	// nil = 20% of active requests, at least 3 (Envoy's defaults).
	RetryBudget *RetryBudget `yaml:"retry_budget,omitempty"`
}

// RetryBudget is Envoy's retry_budget: retries in flight may be at most
// BudgetPercent of the requests in flight to the cluster, or
// MinRetryConcurrency, whichever is more.
type RetryBudget struct {
	// BudgetPercent of active requests that may be retries. Default 20;
	// 0 to 100.
	BudgetPercent float64 `yaml:"budget_percent"`
	// MinRetryConcurrency is the number of retries always allowed in
	// flight. Default 3; >= 0.
	MinRetryConcurrency int `yaml:"min_retry_concurrency"`
}

func (b *RetryBudget) setDefaults() {
	b.BudgetPercent = DefaultRetryBudgetPercent
	b.MinRetryConcurrency = DefaultRetryBudgetMinActive
}

// retryPolicy validates a retries section.
func (v *validator) retryPolicy(p string, r *RetryPolicy) {
	if r.Attempts < 0 || r.Attempts > MaxRetryAttempts {
		v.errorf(p+".attempts", "must be between 0 and %d, got %d", MaxRetryAttempts, r.Attempts)
	}
	for i, c := range r.RetryOn {
		if _, err := ParseRetryOn(c); err != nil {
			v.errorf(fmt.Sprintf("%s.retry_on[%d]", p, i), "%v", err)
		}
	}
	v.nonNegative(p+".per_try_timeout", r.PerTryTimeout)
	v.positive(p+".backoff_base", r.BackoffBase)
	if r.BackoffMax < r.BackoffBase {
		v.errorf(p+".backoff_max", "must be at least backoff_base (%v), got %v", r.BackoffBase, r.BackoffMax)
	}
	if r.MaxBody < 0 {
		v.errorf(p+".max_body", "must not be negative")
	}
}

// ParseRetryOn checks one RetryOn entry: a condition name, or a status
// code from 500 to 599 (returned; 0 for a name).
func ParseRetryOn(s string) (status int, err error) {
	switch s {
	case RetryConnectFailure, RetryReset, RetryTimeout, Retry5xx, RetryGatewayError:
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 500 || n > 599 {
		return 0, fmt.Errorf("unknown retry condition %q: use connect-failure, reset, timeout, 5xx, gateway-error or a status code from 500 to 599", clip(s))
	}
	return n, nil
}

// circuitBreakers validates a cluster's limits and retry policy.
func (v *validator) circuitBreakers(p string, c *Cluster) {
	b := &c.CircuitBreakers
	for _, f := range []struct {
		name string
		n    int
	}{{"max_connections", b.MaxConnections}, {"max_pending_requests", b.MaxPendingRequests},
		{"max_requests", b.MaxRequests}, {"max_retries", b.MaxRetries}} {
		if f.n < 0 {
			v.errorf(p+".circuit_breakers."+f.name, "must not be negative, got %d", f.n)
		}
	}
	if rb := b.RetryBudget; rb != nil {
		if !(rb.BudgetPercent >= 0 && rb.BudgetPercent <= 100) {
			v.errorf(p+".circuit_breakers.retry_budget.budget_percent", "must be between 0 and 100, got %v", rb.BudgetPercent)
		}
		if rb.MinRetryConcurrency < 0 {
			v.errorf(p+".circuit_breakers.retry_budget.min_retry_concurrency", "must not be negative, got %d", rb.MinRetryConcurrency)
		}
	}
	if c.Retries != nil {
		v.retryPolicy(p+".retries", c.Retries)
	}
}
