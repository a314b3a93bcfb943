package main_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver on loopback: it decodes
// each export request with the OpenTelemetry protocol types and keeps
// the spans and the resource they came with.
type otlpReceiver struct {
	srv      *http.Server
	url      string
	mu       sync.Mutex
	exports  int
	spans    []*tracepb.Span
	resource []*commonpb.KeyValue
	tenant   string // the X-Tenant header (metadata) of the last export
}

// take keeps what an export request carried.
func (r *otlpReceiver) take(ex *coltrace.ExportTraceServiceRequest, tenant string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exports++
	r.tenant = tenant
	for _, rs := range ex.ResourceSpans {
		r.resource = rs.GetResource().GetAttributes()
		for _, ss := range rs.ScopeSpans {
			r.spans = append(r.spans, ss.Spans...)
		}
	}
}

// grpcReceiver is the OTLP/gRPC trace service on loopback.
type grpcReceiver struct {
	coltrace.UnimplementedTraceServiceServer
	r *otlpReceiver
}

func (g grpcReceiver) Export(ctx context.Context, ex *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	tenant := ""
	if v := md.Get("x-tenant"); len(v) > 0 {
		tenant = v[0]
	}
	g.r.take(ex, tenant)
	return &coltrace.ExportTraceServiceResponse{}, nil
}

func newGRPCReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{url: "http://" + ln.Addr().String()}
	srv := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(srv, grpcReceiver{r: r})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return r
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{url: "http://" + ln.Addr().String()}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected "+req.Method+" "+req.URL.Path+" "+req.Header.Get("Content-Type"), http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(req.Body)
		var ex coltrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &ex)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.take(&ex, req.Header.Get("X-Tenant"))
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	})}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

// trace returns the spans received for the trace id (hex).
func (r *otlpReceiver) trace(id string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if hex.EncodeToString(s.TraceId) == id {
			out = append(out, s)
		}
	}
	return out
}

func (r *otlpReceiver) counts() (exports, spans int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exports, len(r.spans)
}

func attr(kvs []*commonpb.KeyValue, key string) *commonpb.AnyValue {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}

// tracingDaemon runs the binary with spans exported to rcv and returns it
// with a function sending GET path with a traceparent (none if empty).
func tracingDaemon(t *testing.T, rcv *otlpReceiver, protocol, ratio string, upTP chan<- string) (*daemon, func(path, traceparent string) int) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if upTP != nil {
			upTP <- r.Header.Get("Traceparent")
		}
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "traced")
	}))
	t.Cleanup(up.Close)
	cfgPath := filepath.Join(t.TempDir(), "zerohop.yaml")
	yaml := fmt.Sprintf(`listeners:
  - {name: app, mode: reverse}
clusters:
  - name: svc
    endpoints: [{url: %q}]
routes:
  - {name: api, cluster: svc}
tracing:
  sampling_ratio: %s
  resource_attributes: {deployment.environment: test, service.name: zerohop-sidecar}
  otlp: {endpoint: %q, protocol: %s, headers: {X-Tenant: t1}, timeout: 5s}
`, up.URL, ratio, rcv.url, protocol)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	d, _ := launchDaemon(t, t.TempDir(), "ZEROHOP_CONFIG="+cfgPath)
	if !d.waitReady(t, 20*time.Second) {
		t.Fatalf("exited: %v\n%s", d.err, d.stderr)
	}
	get := func(path, tp string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.listen+path, nil)
		if tp != "" {
			req.Header.Set("Traceparent", tp)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	return d, get
}

// stopGracefully sends SIGTERM and waits for the exit, which flushes the
// span exporter.
func stopGracefully(t *testing.T, d *daemon) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", d.stderr)
	}
}

// TestTracingSpansOTLP: with tracing.otlp set, a request carrying a W3C
// traceparent becomes a server span in the caller's trace, child of the
// caller's span, with a child span per phase; a miss (general path) and
// then a fresh hit (the fast path); an unsampled parent exports nothing
// (parent-based sampling). The spans are received by a real OTLP/HTTP
// receiver decoding the protobuf export requests.
func TestTracingSpansOTLP(t *testing.T) {
	rcv := newOTLPReceiver(t)
	upTP := make(chan string, 10)
	d, get := tracingDaemon(t, rcv, "http", "1", upTP)
	const (
		tidMiss  = "4bf92f3577b34da6a3ce929d0e0e4736"
		tidHit   = "5bf92f3577b34da6a3ce929d0e0e4737"
		tidOff   = "6bf92f3577b34da6a3ce929d0e0e4738"
		callerID = "00f067aa0ba902b7"
	)
	if c := get("/item", "00-"+tidMiss+"-"+callerID+"-01"); c != 200 {
		t.Fatalf("miss: %d", c)
	}
	if c := get("/item", "00-"+tidHit+"-"+callerID+"-01"); c != 200 {
		t.Fatalf("hit: %d", c)
	}
	if c := get("/item", "00-"+tidOff+"-"+callerID+"-00"); c != 200 {
		t.Fatalf("unsampled: %d", c)
	}
	waitFor(t, func() bool { return len(rcv.trace(tidMiss)) > 0 && len(rcv.trace(tidHit)) > 0 }, "spans of both traces")
	stopGracefully(t, d)

	check := func(tid string, wantPhases ...string) *tracepb.Span {
		t.Helper()
		spans := rcv.trace(tid)
		var server *tracepb.Span
		for _, s := range spans {
			if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
				server = s
			}
		}
		if server == nil {
			t.Fatalf("trace %s: no server span among %d", tid, len(spans))
		}
		if got := hex.EncodeToString(server.ParentSpanId); got != callerID {
			t.Errorf("trace %s: server span's parent %s, want the caller's %s", tid, got, callerID)
		}
		if server.Name != "GET api" || attr(server.Attributes, "http.response.status_code").GetIntValue() != 200 ||
			attr(server.Attributes, "http.route").GetStringValue() != "api" {
			t.Errorf("trace %s: server span %q %v", tid, server.Name, server.Attributes)
		}
		children := map[string]*tracepb.Span{}
		for _, s := range spans {
			if s != server {
				if string(s.ParentSpanId) != string(server.SpanId) {
					t.Errorf("trace %s: span %s is not a child of the server span", tid, s.Name)
				}
				if s.StartTimeUnixNano < server.StartTimeUnixNano || s.EndTimeUnixNano > server.EndTimeUnixNano {
					t.Errorf("trace %s: span %s [%d, %d] outside the server span [%d, %d]", tid, s.Name,
						s.StartTimeUnixNano, s.EndTimeUnixNano, server.StartTimeUnixNano, server.EndTimeUnixNano)
				}
				children[s.Name] = s
			}
		}
		for _, p := range wantPhases {
			if children["zerohop."+p] == nil {
				t.Errorf("trace %s: no zerohop.%s span among %v", tid, p, children)
			}
		}
		return server
	}
	server := check(tidMiss, "cache", "connect", "upstream", "transfer", "store")
	// The upstream was told the sidecar's span as its parent, in the
	// caller's trace.
	if got, want := <-upTP, "00-"+tidMiss+"-"+hex.EncodeToString(server.SpanId)+"-01"; got != want {
		t.Errorf("the upstream got traceparent %q, want %q", got, want)
	}
	check(tidHit, "cache")
	if s := rcv.trace(tidHit); len(s) > 0 {
		for _, sp := range s {
			if sp.Kind == tracepb.Span_SPAN_KIND_SERVER && attr(sp.Attributes, "zerohop.cache").GetStringValue() != "hit" {
				t.Errorf("the second request's span says cache %v", attr(sp.Attributes, "zerohop.cache"))
			}
		}
	}
	if s := rcv.trace(tidOff); len(s) != 0 {
		t.Errorf("an unsampled parent's request exported %d spans", len(s))
	}
	rcv.mu.Lock()
	res, tenant := rcv.resource, rcv.tenant
	rcv.mu.Unlock()
	if tenant != "t1" {
		t.Errorf("export header X-Tenant %q, want t1", tenant)
	}
	if attr(res, "service.name").GetStringValue() != "zerohop-sidecar" || attr(res, "deployment.environment").GetStringValue() != "test" {
		t.Errorf("resource attributes: %v", res)
	}
}

// TestTracingRatioZero: sampling_ratio 0 exports nothing, even for a
// sampled parent; the request timelines are still kept.
func TestTracingRatioZero(t *testing.T) {
	rcv := newOTLPReceiver(t)
	d, get := tracingDaemon(t, rcv, "http", "0", nil)
	for range 3 {
		if c := get("/item", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); c != 200 {
			t.Fatalf("GET: %d", c)
		}
	}
	// A fast-path hit reaches the client just before it is recorded.
	waitFor(t, func() bool { return len(timelines(t, d, "route=api")) == 3 }, "three timelines")
	if r := timelines(t, d, "route=api"); len(r) != 3 || r[0].TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("timelines: %+v", r)
	}
	stopGracefully(t, d)
	if ex, n := rcv.counts(); ex != 0 || n != 0 {
		t.Errorf("sampling_ratio 0: %d exports, %d spans received; want none", ex, n)
	}
}

// TestTracingSpansOTLPGRPC: protocol grpc exports the same spans to a real
// OTLP/gRPC trace service, headers sent as metadata.
func TestTracingSpansOTLPGRPC(t *testing.T) {
	rcv := newGRPCReceiver(t)
	d, get := tracingDaemon(t, rcv, "grpc", "1", nil)
	const tid = "7bf92f3577b34da6a3ce929d0e0e4739"
	if c := get("/g", "00-"+tid+"-00f067aa0ba902b7-01"); c != 200 {
		t.Fatalf("GET: %d", c)
	}
	stopGracefully(t, d) // flushes
	spans := rcv.trace(tid)
	var server *tracepb.Span
	names := map[string]bool{}
	for _, s := range spans {
		names[s.Name] = true
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
			server = s
		}
	}
	if server == nil || hex.EncodeToString(server.ParentSpanId) != "00f067aa0ba902b7" || !names["zerohop.upstream"] {
		t.Fatalf("spans over gRPC: %v", spans)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.tenant != "t1" {
		t.Errorf("metadata x-tenant %q, want t1", rcv.tenant)
	}
}
