package config

import (
	"strings"
	"testing"
	"time"
)

func TestTracingConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"negative slow threshold", lines("tracing:", "  slow_threshold: -1s"),
			`zerohop.yaml:2: tracing.slow_threshold: invalid duration "-1s": must not be negative`},
		{"ratio without otlp", lines("tracing:", "  sampling_ratio: 0.5"),
			"zerohop.yaml:2: tracing.sampling_ratio: only applies with tracing.otlp"},
		{"attributes without otlp", lines("tracing:", "  resource_attributes: {a: b}"),
			"zerohop.yaml:2: tracing.resource_attributes: only apply with tracing.otlp"},
		{"ratio above 1", lines("tracing:", "  sampling_ratio: 1.5", "  otlp: {endpoint: 'http://127.0.0.1:4318'}"),
			"zerohop.yaml:2: tracing.sampling_ratio: must be between 0 and 1, got 1.5"},
		{"negative ratio", lines("tracing:", "  sampling_ratio: -0.1", "  otlp: {endpoint: 'http://127.0.0.1:4318'}"),
			"zerohop.yaml:2: tracing.sampling_ratio: must be between 0 and 1"},
		{"no endpoint", lines("tracing:", "  otlp:", "    protocol: http"),
			"zerohop.yaml:2: tracing.otlp.endpoint: is required"},
		{"endpoint without scheme", lines("tracing:", "  otlp:", "    endpoint: 127.0.0.1:4318"),
			`zerohop.yaml:3: tracing.otlp.endpoint: "127.0.0.1:4318" is not an http:// or https:// URL with a host`},
		{"bad protocol", lines("tracing:", "  otlp:", "    endpoint: 'http://c:4318'", "    protocol: thrift"),
			`zerohop.yaml:4: tracing.otlp.protocol: invalid protocol "thrift": must be "http" or "grpc"`},
		{"bad header", lines("tracing:", "  otlp:", "    endpoint: 'http://c:4318'", "    headers: {'a b': c}"),
			`zerohop.yaml:4: tracing.otlp.headers: invalid header "a b"`},
		{"negative timeout", lines("tracing:", "  otlp:", "    endpoint: 'http://c:4318'", "    timeout: -2s"),
			`zerohop.yaml:4: tracing.otlp.timeout: invalid duration "-2s": must not be negative`},
		{"unknown key", lines("tracing:", "  otlp:", "    endpoint: 'http://c:4318'", "    compression: gzip"),
			"compression"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("zerohop.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestTracingDefaults(t *testing.T) {
	c, err := Parse("zerohop.yaml", []byte(lines("tracing:", "  otlp: {endpoint: 'https://collector.example:4318/custom'}")))
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Tracing
	if tr.SlowThresholdOrDefault() != DefaultSlowThreshold || tr.Ratio() != 1 || tr.OTLP.Protocol != "" {
		t.Errorf("defaults: slow %v ratio %v protocol %q", tr.SlowThresholdOrDefault(), tr.Ratio(), tr.OTLP.Protocol)
	}
	c, err = Parse("zerohop.yaml", []byte(lines("tracing:", "  slow_threshold: 250ms", "  sampling_ratio: 0",
		"  otlp: {endpoint: 'http://127.0.0.1:4317', protocol: grpc}")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tracing.SlowThresholdOrDefault() != 250*time.Millisecond || c.Tracing.Ratio() != 0 {
		t.Errorf("set: slow %v ratio %v", c.Tracing.SlowThresholdOrDefault(), c.Tracing.Ratio())
	}
	if cl := CloneTracing(&c.Tracing); cl.OTLP == c.Tracing.OTLP || cl.OTLP.Endpoint != c.Tracing.OTLP.Endpoint {
		t.Error("CloneTracing is not a deep copy")
	}
}
