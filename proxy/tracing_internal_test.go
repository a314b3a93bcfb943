package proxy

import (
	"testing"

	"github.com/zerohop/zerohop/config"
)

// TestTracingReload: a reload starts, keeps, replaces and stops the span
// exporter as tracing.otlp and sampling_ratio say.
func TestTracingReload(t *testing.T) {
	p, err := New(config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.tracer.Load() != nil {
		t.Fatal("spans exported without tracing.otlp")
	}
	with := func(endpoint string, ratio *float64) *config.Config {
		c := config.Default()
		c.Tracing.OTLP = &config.OTLP{Endpoint: endpoint}
		c.Tracing.SamplingRatio = ratio
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	steps := []struct {
		cfg  *config.Config
		want string // "on", "same", "new", "off"
	}{
		{with("http://127.0.0.1:4318", nil), "on"},
		{with("http://127.0.0.1:4318", nil), "same"},
		{with("http://127.0.0.1:4319", nil), "new"},
		{with("http://127.0.0.1:4319", new(float64)), "off"},
		{config.Default(), "off"},
	}
	prev := p.tracer.Load()
	for i, s := range steps {
		if err := p.Reload(s.cfg); err != nil {
			t.Fatal(err)
		}
		cur := p.tracer.Load()
		ok := false
		switch s.want {
		case "on", "new":
			ok = cur != nil && cur != prev
		case "same":
			ok = cur != nil && cur == prev
		case "off":
			ok = cur == nil
		}
		if !ok {
			t.Errorf("step %d: want %s; exporter %p, before %p", i, s.want, cur, prev)
		}
		prev = cur
	}
}
