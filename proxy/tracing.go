// OpenTelemetry spans of request timelines (config tracing.otlp): when
// set, each recorded request becomes a server span continuing the
// caller's W3C traceparent, with a child span per phase, built after the
// request from its timeline's stamps and exported in batches off the
// request path. When it is not set, nothing here runs.

package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/timeline"
)

// ErrTracing reports a tracing exporter that could not be set up.
var ErrTracing = errors.New("proxy: tracing")

// spanExport turns recorded requests into spans.
type spanExport struct {
	cfg    config.Tracing // what it was built from, to tell a reload's change
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
}

// setTracing starts, replaces or stops span export to match t. The
// replaced exporter is flushed and shut down in the background.
func (p *Proxy) setTracing(t config.Tracing) error {
	old := p.tracer.Load()
	want := t.OTLP != nil && t.Ratio() > 0
	if old != nil && want && reflect.DeepEqual(old.cfg, t) {
		return nil
	}
	var next *spanExport
	if want {
		var err error
		if next, err = newSpanExport(t); err != nil {
			return err
		}
	}
	p.tracer.Store(next)
	if old != nil {
		go old.shutdown()
	}
	return nil
}

func (s *spanExport) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s.tp.Shutdown(ctx)
}

// stopTracing flushes and stops span export (Close).
func (p *Proxy) stopTracing() {
	if old := p.tracer.Swap(nil); old != nil {
		old.shutdown()
	}
}

func newSpanExport(t config.Tracing) (*spanExport, error) {
	o := t.OTLP
	u, err := url.Parse(o.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint: %v", ErrTracing, err)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var exp sdktrace.SpanExporter
	ctx := context.Background()
	if o.Protocol == config.OTLPGRPC {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(u.Host), otlptracegrpc.WithTimeout(timeout)}
		if u.Scheme == "http" {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		if len(o.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(o.Headers))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	} else {
		path := u.Path
		if path == "" || path == "/" {
			path = "/v1/traces"
		}
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(path),
			otlptracehttp.WithTimeout(timeout)}
		if u.Scheme == "http" {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if len(o.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(o.Headers))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTracing, err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", "zerohop")}
	for k, v := range t.ResourceAttributes {
		if k == "service.name" {
			attrs[0] = attribute.String(k, v)
			continue
		}
		attrs = append(attrs, attribute.String(k, v))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(2*time.Second)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.Ratio()))),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	return &spanExport{cfg: *config.CloneTracing(&t), tp: tp, tracer: tp.Tracer("github.com/zerohop/zerohop/proxy")}, nil
}

// traceCarrier is a request's traceparent, for the W3C propagator.
type traceCarrier struct{ tp, ts string }

func (c traceCarrier) Get(key string) string {
	switch strings.ToLower(key) {
	case "traceparent":
		return c.tp
	case "tracestate":
		return c.ts
	}
	return ""
}
func (traceCarrier) Set(string, string) {}
func (traceCarrier) Keys() []string     { return []string{"traceparent"} }

// export makes a's spans: a server span for the request, continuing its
// traceparent, and a child for each phase that happened.
func (s *spanExport) export(a *accessEntry) {
	ctx := context.Background()
	tp := a.traceparent
	if tp == "" && len(a.tpb) > 0 {
		tp = string(a.tpb)
	}
	if tp != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, traceCarrier{tp: tp})
	}
	name := a.method
	if a.route != "" {
		name += " " + a.route
	}
	ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(a.start))
	if !span.IsRecording() {
		return
	}
	reqID := a.reqID
	if reqID == "" {
		reqID = string(a.reqIDb)
	}
	span.SetAttributes(
		attribute.String("http.request.method", a.method),
		attribute.Int("http.response.status_code", a.status),
		attribute.String("server.address", a.host),
		attribute.String("url.path", a.target),
		attribute.String("http.route", a.route),
		attribute.String("zerohop.listener", a.listener),
		attribute.String("zerohop.cache", a.cacheLabel),
		attribute.String("zerohop.upstream", a.upstream),
		attribute.String("zerohop.request_id", reqID),
		attribute.Int("zerohop.bytes", a.bytes),
	)
	if a.status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	for ph, sp := range a.phases {
		if sp.End == 0 {
			continue
		}
		_, c := s.tracer.Start(ctx, "zerohop."+timeline.Phase(ph).String(), trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithTimestamp(a.start.Add(sp.Start)))
		c.End(trace.WithTimestamp(a.start.Add(sp.End)))
	}
	span.End(trace.WithTimestamp(a.start.Add(a.d)))
}
