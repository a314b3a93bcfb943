// OpenTelemetry spans of request timelines (config tracing.otlp): when
// set, each recorded request becomes a server span continuing the
// caller's W3C traceparent, with a child span per phase, built after the
// request from its timeline's stamps and exported in batches off the
// request path. When it is not set, nothing here runs.

package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
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
	cfg     config.Tracing // what it was built from, to tell a reload's change
	tp      *sdktrace.TracerProvider
	tracer  trace.Tracer
	sampler sdktrace.Sampler
}

// spanIDs are the ids of a request's server span, chosen when its request
// goes upstream so that the upstream's traceparent names it as the
// parent; the span is built after the request with these ids.
type spanIDs struct {
	trace   trace.TraceID
	span    trace.SpanID
	sampled bool
}

type presetKey struct{}

// idGenerator is the SDK's id source: a server span's preset ids (from
// the context) or random ones.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if ids, ok := ctx.Value(presetKey{}).(*spanIDs); ok {
		return ids.trace, ids.span
	}
	return randomTraceID(), randomSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if ids, ok := ctx.Value(presetKey{}).(*spanIDs); ok {
		return ids.span
	}
	return randomSpanID()
}

func randomTraceID() (t trace.TraceID) {
	for !t.IsValid() {
		binary.BigEndian.PutUint64(t[:8], rand.Uint64())
		binary.BigEndian.PutUint64(t[8:], rand.Uint64())
	}
	return t
}

func randomSpanID() (s trace.SpanID) {
	for !s.IsValid() {
		binary.BigEndian.PutUint64(s[:], rand.Uint64())
	}
	return s
}

// traceUpstream sets the traceparent of x's upstream request h to x's
// own server span (a child of the caller's, or a new trace), so that the
// upstream's spans are children of the sidecar's. The caller's
// tracestate passes through. Without tracing it does nothing.
func (p *Proxy) traceUpstream(x *exchange, h http.Header) {
	s := p.tracer.Load()
	if s == nil || x.refresh || x.in == nil {
		return
	}
	if !x.spanIDs.span.IsValid() {
		parent := s.parent(x.in.Header.Get("Traceparent"), x.in.Header.Get("Tracestate"))
		tid := trace.SpanContextFromContext(parent).TraceID()
		if !tid.IsValid() {
			tid = randomTraceID()
		}
		res := s.sampler.ShouldSample(sdktrace.SamplingParameters{ParentContext: parent, TraceID: tid,
			Kind: trace.SpanKindServer})
		x.spanIDs = spanIDs{trace: tid, span: randomSpanID(), sampled: res.Decision == sdktrace.RecordAndSample}
	}
	flags := "-00"
	if x.spanIDs.sampled {
		flags = "-01"
	}
	h["Traceparent"] = []string{"00-" + x.spanIDs.trace.String() + "-" + x.spanIDs.span.String() + flags}
}

// parent is the caller's span context from its traceparent, if valid.
func (s *spanExport) parent(tp, ts string) context.Context {
	ctx := context.Background()
	if tp != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, traceCarrier{tp: tp, ts: ts})
	}
	return ctx
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
	sampler := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.Ratio()))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(2*time.Second)),
		sdktrace.WithSampler(sampler),
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	return &spanExport{cfg: *config.CloneTracing(&t), tp: tp, tracer: tp.Tracer("github.com/zerohop/zerohop/proxy"),
		sampler: sampler}, nil
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

// The spans' names and kinds, made once (BenchmarkTracing: each was an
// allocation per span).
var (
	serverKind     = trace.WithSpanKind(trace.SpanKindServer)
	internalKind   = trace.WithSpanKind(trace.SpanKindInternal)
	phaseSpanNames = func() (n [timeline.NumPhases]string) {
		for i := range n {
			n[i] = "zerohop." + timeline.Phase(i).String()
		}
		return n
	}()
)

// export makes a's spans: a server span for the request, continuing its
// traceparent, and a child for each phase that happened.
func (s *spanExport) export(a *accessEntry) {
	tp := a.traceparent
	if tp == "" && len(a.tpb) > 0 {
		tp = string(a.tpb)
	}
	ctx := s.parent(tp, a.tracestate)
	if a.spanIDs.span.IsValid() { // the ids the upstream was told (traceUpstream)
		ids := a.spanIDs // a copy: a must not escape (the fast path's is on its stack)
		ctx = context.WithValue(ctx, presetKey{}, &ids)
	}
	name := a.method
	if a.route != "" {
		name += " " + a.route
	}
	_, span := s.tracer.Start(ctx, name, serverKind, trace.WithTimestamp(a.start))
	if !span.IsRecording() {
		return
	}
	// Not the context Start returned: it carries the preset ids.
	ctx = trace.ContextWithSpan(context.Background(), span)
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
		_, c := s.tracer.Start(ctx, phaseSpanNames[ph], internalKind, trace.WithTimestamp(a.start.Add(sp.Start)))
		c.End(trace.WithTimestamp(a.start.Add(sp.End)))
	}
	span.End(trace.WithTimestamp(a.start.Add(a.d)))
}
