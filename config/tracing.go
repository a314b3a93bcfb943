package config

import (
	"net/url"
	"reflect"
	"strings"
	"time"
)

// Tracing is what the sidecar records of each request beyond metrics and
// the access log: a timeline of its phases (filters, cache decision,
// coalescing wait, connect, time to first byte, transfer, store) kept in
// two bounded in-memory rings, one of recent requests and one of slow
// ones, read at the admin endpoint GET /requests and with
// `zerohop log`; and, when OTLP is set, the same phases exported as
// OpenTelemetry spans. The rings are always on: recording one request
// costs well under a microsecond and allocates nothing.
type Tracing struct {
	// SlowThreshold is how long a request must take to be kept in the
	// ring of slow requests as well as in the ring of recent ones.
	// Default 0 = 100ms (DefaultSlowThreshold).
	SlowThreshold time.Duration `yaml:"slow_threshold"`
	// OTLP exports spans to an OpenTelemetry collector. Default nil = no
	// spans (zero cost beyond the rings).
	OTLP *OTLP `yaml:"otlp"`
	// SamplingRatio is the fraction of requests without a parent
	// traceparent whose spans are exported, 0 to 1. A request whose
	// caller sent a W3C traceparent follows the caller's sampled flag
	// (parent-based sampling). 0 exports nothing at all, not even for a
	// sampled parent. Default nil = 1 (every request). Only with otlp.
	SamplingRatio *float64 `yaml:"sampling_ratio"`
	// ResourceAttributes are added to the exported resource, beside
	// service.name "zerohop" (which an entry here overrides). Default
	// none. Only with otlp.
	ResourceAttributes map[string]string `yaml:"resource_attributes"`
}

// DefaultSlowThreshold is tracing.slow_threshold's default.
const DefaultSlowThreshold = 100 * time.Millisecond

// OTLPProtocol is how spans are sent: "http" (OTLP/HTTP, protobuf) or
// "grpc".
type OTLPProtocol string

// OTLP protocols.
const (
	OTLPHTTP OTLPProtocol = "http"
	OTLPGRPC OTLPProtocol = "grpc"
)

// OTLP is an OpenTelemetry collector that spans are exported to, in
// batches, off the request path.
type OTLP struct {
	// Endpoint is the collector's URL: http://host:port or
	// https://host:port (http: is sent without TLS). For protocol http
	// the path defaults to /v1/traces; a path given is used as is.
	// Required.
	Endpoint string `yaml:"endpoint"`
	// Protocol is "http" (OTLP/HTTP with protobuf, usually port 4318) or
	// "grpc" (usually port 4317). Default "http".
	Protocol OTLPProtocol `yaml:"protocol"`
	// Headers are sent with every export (an API key, a tenant). Default
	// none.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one export. Default 0 = 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// SlowThresholdOrDefault is SlowThreshold with its default applied.
func (t *Tracing) SlowThresholdOrDefault() time.Duration {
	if t.SlowThreshold > 0 {
		return t.SlowThreshold
	}
	return DefaultSlowThreshold
}

// Ratio is SamplingRatio with its default applied.
func (t *Tracing) Ratio() float64 {
	if t.SamplingRatio == nil {
		return 1
	}
	return *t.SamplingRatio
}

func (v *validator) tracing(t *Tracing) {
	v.nonNegative("tracing.slow_threshold", t.SlowThreshold)
	if t.OTLP == nil {
		if t.SamplingRatio != nil {
			v.errorf("tracing.sampling_ratio", "only applies with tracing.otlp, which is not set")
		}
		if len(t.ResourceAttributes) > 0 {
			v.errorf("tracing.resource_attributes", "only apply with tracing.otlp, which is not set")
		}
		return
	}
	if r := t.SamplingRatio; r != nil && (*r < 0 || *r > 1 || *r != *r) {
		v.errorf("tracing.sampling_ratio", "must be between 0 and 1, got %v", *r)
	}
	for k := range t.ResourceAttributes {
		if k == "" {
			v.errorf("tracing.resource_attributes", "an attribute name is empty")
		}
	}
	o := t.OTLP
	switch o.Protocol {
	case "", OTLPHTTP, OTLPGRPC:
	default:
		v.errorf("tracing.otlp.protocol", "invalid protocol %q: must be %q or %q", o.Protocol, OTLPHTTP, OTLPGRPC)
	}
	if o.Endpoint == "" {
		v.errorf("tracing.otlp.endpoint", "is required: the collector's URL, for example http://127.0.0.1:4318")
	} else if u, err := url.Parse(o.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errorf("tracing.otlp.endpoint", "%q is not an http:// or https:// URL with a host", o.Endpoint)
	}
	for k, val := range o.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") || strings.ContainsAny(val, "\r\n") {
			v.errorf("tracing.otlp.headers", "invalid header %q", k)
		}
	}
	v.nonNegative("tracing.otlp.timeout", o.Timeout)
}

// CloneTracing returns a deep copy of t.
func CloneTracing(t *Tracing) *Tracing {
	out := new(Tracing)
	deepCopy(reflect.ValueOf(out).Elem(), reflect.ValueOf(t).Elem())
	return out
}
