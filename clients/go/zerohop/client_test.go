package zerohop_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/shm"
)

// fakeSidecar is a real HTTP server on loopback acting as the forward proxy
// misses go to; it answers every request itself and counts them.
type fakeSidecar struct {
	*httptest.Server
	n atomic.Int64
}

func newSidecar(t testing.TB) *fakeSidecar {
	s := &fakeSidecar{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.n.Add(1)
		w.Header().Set("X-From", "sidecar")
		w.Header().Set("X-Target", r.URL.String())
		io.WriteString(w, "from sidecar")
	}))
	t.Cleanup(s.Close)
	return s
}

type fixture struct {
	w       *shm.Writer
	c       *zerohop.Client
	sidecar *fakeSidecar
	http    *http.Client
}

func setup(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	w, err := shm.OpenWriter(dir, &shm.Options{Size: 2 << 20, RegionSize: 64 << 10, HeartbeatInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	sc := newSidecar(t)
	c, err := zerohop.Open(dir, &zerohop.Options{Sidecar: strings.TrimPrefix(sc.URL, "http://"), MaxWriterSilence: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fixture{w: w, c: c, sidecar: sc, http: &http.Client{Transport: c.Transport()}}
}

func (f *fixture) put(t testing.TB, target string, mod func(*shm.Item)) {
	t.Helper()
	now := time.Now()
	it := &shm.Item{
		Key:    shm.AppendKey(nil, "GET", "http", "api.example", target),
		Status: 200,
		Header: http.Header{"Content-Type": {"text/plain"}, "Etag": {`"e1"`},
			"Last-Modified": {"Sun, 22 Nov 2026 10:00:00 GMT"}},
		Body:     []byte("cached " + target),
		StoredMs: now.Add(-3 * time.Second).UnixMilli(), InitialAge: 2,
		ExpiresMs: now.Add(time.Minute).UnixMilli(),
		ETag:      `"e1"`, LastModified: "Sun, 22 Nov 2026 10:00:00 GMT",
	}
	if mod != nil {
		mod(it)
	}
	if err := f.w.Put(it); err != nil {
		t.Fatal(err)
	}
}

func TestTransport(t *testing.T) {
	f := setup(t)
	f.put(t, "/fresh", nil)
	f.put(t, "/expired", func(it *shm.Item) { it.ExpiresMs = time.Now().Add(-time.Second).UnixMilli() })
	f.put(t, "/auth-ok", func(it *shm.Item) { it.Flags |= shm.FlagAuthShared })
	f.put(t, "/nocache", func(it *shm.Item) { it.Flags |= shm.FlagNoCache })

	for _, tt := range []struct {
		name       string
		method     string
		target     string
		header     http.Header
		wantShm    bool
		wantStatus int
		wantBody   string
	}{
		{"fresh hit", "GET", "/fresh", nil, true, 200, "cached /fresh"},
		{"HEAD from stored GET", "HEAD", "/fresh", nil, true, 200, ""},
		{"absent", "GET", "/absent", nil, false, 200, "from sidecar"},
		{"expired", "GET", "/expired", nil, false, 200, "from sidecar"},
		{"response no-cache", "GET", "/nocache", nil, false, 200, "from sidecar"},
		{"request no-cache", "GET", "/fresh", http.Header{"Cache-Control": {"no-cache"}}, false, 200, "from sidecar"},
		{"request max-age=0", "GET", "/fresh", http.Header{"Cache-Control": {"max-age=0"}}, false, 200, "from sidecar"},
		{"request max-age under age", "GET", "/fresh", http.Header{"Cache-Control": {"max-age=1"}}, false, 200, "from sidecar"},
		{"request max-age over age", "GET", "/fresh", http.Header{"Cache-Control": {"max-age=60"}}, true, 200, "cached /fresh"},
		{"request min-fresh too long", "GET", "/fresh", http.Header{"Cache-Control": {"min-fresh=3600"}}, false, 200, "from sidecar"},
		{"pragma no-cache", "GET", "/fresh", http.Header{"Pragma": {"no-cache"}}, false, 200, "from sidecar"},
		{"pragma ignored with cache-control", "GET", "/fresh", http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"max-stale"}}, true, 200, "cached /fresh"},
		{"POST", "POST", "/fresh", nil, false, 200, "from sidecar"},
		{"range", "GET", "/fresh", http.Header{"Range": {"bytes=0-1"}}, false, 200, "from sidecar"},
		{"authorization, not shareable", "GET", "/fresh", http.Header{"Authorization": {"Bearer x"}}, false, 200, "from sidecar"},
		{"authorization, shareable", "GET", "/auth-ok", http.Header{"Authorization": {"Bearer x"}}, true, 200, "cached /auth-ok"},
		{"if-none-match match", "GET", "/fresh", http.Header{"If-None-Match": {`W/"e1"`}}, true, 304, ""},
		{"if-none-match other", "GET", "/fresh", http.Header{"If-None-Match": {`"zz"`}}, true, 200, "cached /fresh"},
		{"if-modified-since later", "GET", "/fresh", http.Header{"If-Modified-Since": {"Mon, 23 Nov 2026 10:00:00 GMT"}}, true, 304, ""},
		{"if-modified-since earlier", "GET", "/fresh", http.Header{"If-Modified-Since": {"Sat, 21 Nov 2026 10:00:00 GMT"}}, true, 200, "cached /fresh"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := f.sidecar.n.Load()
			req, _ := http.NewRequest(tt.method, "http://api.example"+tt.target, nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := f.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fromShm := f.sidecar.n.Load() == before
			if fromShm != tt.wantShm {
				t.Errorf("served from shm = %v; want %v (status %d, body %q)", fromShm, tt.wantShm, resp.StatusCode, body)
			}
			if resp.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("got %d %q; want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantShm {
				cs := resp.Header.Get("Cache-Status")
				if !strings.HasPrefix(cs, "zerohop; hit; ttl=") || !strings.HasSuffix(cs, "; detail=shm") {
					t.Errorf("Cache-Status %q", cs)
				}
				// Stored 3s ago with an initial age of 2s: RFC 9111 §4.2.3.
				if age := resp.Header.Get("Age"); age != "5" && age != "6" {
					t.Errorf("Age %q; want 5", age)
				}
				if tt.method == "HEAD" && resp.ContentLength != int64(len("cached /fresh")) {
					t.Errorf("HEAD Content-Length %d", resp.ContentLength)
				}
			}
		})
	}
	s := f.c.Stats()
	if s.Hits == 0 || s.Misses == 0 || s.Bypassed == 0 || s.NotModified != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestTransportVary(t *testing.T) {
	f := setup(t)
	primary := shm.AppendKey(nil, "GET", "http", "api.example", "/v")
	f.put(t, "/v", func(it *shm.Item) {
		it.Flags = shm.FlagVaryIndex
		it.Vary = []string{"accept-language"}
		it.Body = nil
	})
	for _, lang := range []string{"en", "fr"} {
		key := shm.AppendVary(append([]byte(nil), primary...), []shm.VaryField{{Name: "accept-language", Present: true, Value: lang}})
		f.put(t, "/v", func(it *shm.Item) {
			it.Key = key
			it.Vary = []string{"accept-language"}
			it.Body = []byte("hello " + lang)
		})
	}
	for _, tt := range []struct {
		lang, want string
	}{{"en", "hello en"}, {"fr", "hello fr"}, {"de", "from sidecar"}, {"", "from sidecar"}} {
		req, _ := http.NewRequest("GET", "http://api.example/v", nil)
		if tt.lang != "" {
			req.Header.Set("Accept-Language", tt.lang)
		}
		resp, err := f.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != tt.want {
			t.Errorf("Accept-Language %q: got %q; want %q", tt.lang, body, tt.want)
		}
	}
}

// TestTransportWriterGone checks that hits stop once the sidecar is gone:
// without it no invalidation is applied.
func TestTransportWriterGone(t *testing.T) {
	f := setup(t)
	f.put(t, "/g", nil)
	get := func() string {
		resp, err := f.http.Get("http://api.example/g")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(); got != "cached /g" {
		t.Fatalf("before: %q", got)
	}
	f.w.Close()
	if got := get(); got != "from sidecar" {
		t.Fatalf("after the writer closed: %q; want the sidecar's answer", got)
	}
	if f.c.Healthy() {
		t.Error("Healthy with no writer")
	}
}

// TestImportClosure keeps the app-side client light: no Pebble, proxy,
// store, invalidation or daemon code may reach an app through it.
func TestImportClosure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/zerohop/zerohop/clients/go/zerohop").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("implausible dependency list: %q", deps)
	}
	for _, d := range deps {
		for _, banned := range []string{
			"github.com/cockroachdb/", "github.com/zerohop/zerohop/proxy", "github.com/zerohop/zerohop/store",
			"github.com/zerohop/zerohop/invalidate/", "github.com/zerohop/zerohop/cmd", "github.com/zerohop/zerohop/internal/",
			"github.com/fsnotify/",
			"github.com/prometheus/", "github.com/urfave/", "github.com/redis/", "gopkg.in/yaml",
			"go.opentelemetry.io/", "google.golang.org/grpc",
		} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("client imports %s", d)
			}
		}
	}
}

// TestGetKey checks the pre-built-key lookup against Get: same hits, Vary
// followed, and the caller's key left as it was (spare capacity included).
func TestGetKey(t *testing.T) {
	f := setup(t)
	f.put(t, "/k", nil)
	f.put(t, "/v", func(it *shm.Item) {
		it.Flags = shm.FlagVaryIndex
		it.Vary = []string{"accept-language"}
		it.Body = nil
	})
	primary := shm.AppendKey(nil, "GET", "http", "api.example", "/v")
	f.put(t, "/v", func(it *shm.Item) {
		it.Key = shm.AppendVary(append([]byte(nil), primary...), []shm.VaryField{{Name: "accept-language", Present: true, Value: "fr"}})
		it.Vary = []string{"accept-language"}
		it.Body = []byte("bonjour")
	})
	buf := make([]byte, 4096)
	key := shm.AppendKey(make([]byte, 0, 512), "GET", "http", "API.example:80", "/k")
	e, _, ok := f.c.GetKey(buf, key, nil)
	if !ok || string(e.Body) != "cached /k" {
		t.Fatalf("GetKey /k: %v %q", ok, e.Body)
	}
	if _, _, ok := f.c.GetKey(buf, shm.AppendKey(nil, "GET", "http", "api.example", "/absent"), nil); ok {
		t.Fatal("GetKey hit an absent key")
	}
	vk := append(make([]byte, 0, 512), primary...)
	spare := vk[len(vk):cap(vk)]
	spare[0] = 0xee
	e, _, ok = f.c.GetKey(buf, vk, http.Header{"Accept-Language": {"fr"}})
	if !ok || string(e.Body) != "bonjour" {
		t.Fatalf("GetKey variant: %v %q", ok, e.Body)
	}
	if string(vk) != string(primary) || spare[0] != 0xee {
		t.Fatal("GetKey wrote into the caller's key")
	}
	if _, _, ok := f.c.GetKey(buf, vk, http.Header{"Accept-Language": {"de"}}); ok {
		t.Fatal("GetKey hit an absent variant")
	}
	if e, _, ok := f.c.Get(buf, "HEAD", "HTTP", "api.example", "/k", nil); !ok || string(e.Body) != "cached /k" {
		t.Fatalf("Get HEAD /k: %v %q", ok, e.Body)
	}
}
