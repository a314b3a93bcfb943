package proxy_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// credUpstream records the credential field of every request it gets and
// answers with fields that echo it (which must not reach the app).
type credUpstream struct {
	field string
	mu    sync.Mutex
	seen  []string
}

func (u *credUpstream) handler(cacheControl string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ int64) {
		v := r.Header.Get(u.field)
		u.mu.Lock()
		u.seen = append(u.seen, v)
		u.mu.Unlock()
		w.Header().Set("Cache-Control", cacheControl)
		w.Header().Set(u.field, v)           // an echo in the same field
		w.Header().Set("X-Debug-Request", v) // and under another name
		io.WriteString(w, "ok")
	}
}

func (u *credUpstream) values() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// writeSecret replaces path atomically (a new file renamed over it).
func writeSecret(t *testing.T, path, v string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// noSecret fails if s anywhere in what the proxy exposes: its metrics and
// the access log.
func noSecret(t *testing.T, h *harness, secrets ...string) {
	t.Helper()
	mfs, err := h.p.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		for _, mf := range mfs {
			if strings.Contains(mf.String(), s) {
				t.Errorf("metric %s carries the credential", mf.GetName())
			}
		}
		for _, l := range h.logs.records() {
			if strings.Contains(fmt.Sprint(l), s) {
				t.Errorf("access log line carries the credential: %v", l)
			}
		}
	}
}

// TestCredentialsInjected: each credential type reaches the upstream, on
// both entry paths, replacing what the app sent in its field, and
// neither the response to the app (fields, body), the access log nor the
// metrics carry it.
func TestCredentialsInjected(t *testing.T) {
	const secret = "s3cr3t-token-0123456789"
	for _, tt := range []struct {
		typ, header, field, file, want string
	}{
		{"header", "X-Api-Key", "X-Api-Key", secret, secret},
		{"bearer", "", "Authorization", secret, "Bearer " + secret},
		{"basic", "", "Authorization", "svc:" + secret, "Basic " + base64.StdEncoding.EncodeToString([]byte("svc:"+secret))},
	} {
		for _, plain := range []bool{false, true} {
			file := filepath.Join(t.TempDir(), "secret")
			writeSecret(t, file, tt.file)
			up := &credUpstream{field: tt.field}
			h := newHarness(t, harnessOptions{handler: up.handler("no-store"), plainServer: plain, config: func(cfg *config.Config) {
				cfg.Clusters[0].Credentials = &config.Credentials{Type: tt.typ, Header: tt.header, File: file, CheckInterval: time.Second}
			}})
			for _, method := range []string{"GET", "POST"} { // GET: the fast path's hand-over; POST: net/http's own
				r := h.do(method, "/x", hdr(tt.field, "the-apps-own-value"), strings.NewReader(""))
				if r.StatusCode != 200 || r.body != "ok" {
					t.Fatalf("%s plain=%v %s: %d %q", tt.typ, plain, method, r.StatusCode, r.body)
				}
				for k, vs := range r.Header {
					for _, v := range vs {
						if strings.Contains(v, secret) {
							t.Errorf("%s plain=%v %s: the response to the app carries the credential in %s", tt.typ, plain, method, k)
						}
					}
				}
			}
			if got := up.values(); len(got) != 2 || got[0] != tt.want || got[1] != tt.want {
				t.Errorf("%s plain=%v: the upstream saw %q; want %q twice", tt.typ, plain, got, tt.want)
			}
			noSecret(t, h, secret, tt.want)
			if got := counter(t, h.p, "zerohop_credential_reloads_total", "result", "ok"); got != 1 {
				t.Errorf("reloads ok = %v; want 1", got)
			}
			h.close()
		}
	}
}

// TestCredentialsRotation replaces the file while a loop of requests
// runs: first by a rename, then as Kubernetes updates a mounted Secret
// (a new timestamped directory and an atomic swap of the ..data symlink
// the file's path goes through). The upstream sees the old value, then
// the new one, never anything else, and no request fails. A file that
// goes missing or empty keeps the value in use, counted.
func TestCredentialsRotation(t *testing.T) {
	dir := t.TempDir()
	version := func(name, v string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		if v != "" {
			if err := os.WriteFile(filepath.Join(dir, name, "token"), []byte(v), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	swap := func(name string) { // as the kubelet's atomic writer does
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", "token-one-aaaaaaaa")
	swap("..v1")
	file := filepath.Join(dir, "token")
	if err := os.Symlink(filepath.Join("..data", "token"), file); err != nil {
		t.Fatal(err)
	}
	up := &credUpstream{field: "Authorization"}
	h := newHarness(t, harnessOptions{handler: up.handler("no-store"), config: func(cfg *config.Config) {
		cfg.Clusters[0].Credentials = &config.Credentials{Type: "bearer", File: file, CheckInterval: 5 * time.Millisecond}
	}})

	// until sends requests one after another until the upstream has seen
	// want (or fails the test after a bound).
	failed := 0
	until := func(want string) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if r := h.get("/loop"); r.StatusCode != 200 {
				failed++
			}
			vs := up.values()
			if vs[len(vs)-1] == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the upstream never saw %q; last %q", want, vs[len(vs)-1])
			}
		}
	}
	until("Bearer token-one-aaaaaaaa")
	writeTwo := func() { // a rename over the symlinked path's target directory
		version("..v2", "token-two-bbbbbbbb")
		swap("..v2")
	}
	writeTwo()
	until("Bearer token-two-bbbbbbbb")
	os.RemoveAll(filepath.Join(dir, "..v1"))

	// Broken: the symlink swapped to a version without the file, then an
	// empty file. The value in use stays.
	version("..v3", "")
	swap("..v3")
	version("..v4", "   \n")
	time.Sleep(20 * time.Millisecond)
	for i := 0; i < 20; i++ {
		if r := h.get("/loop"); r.StatusCode != 200 {
			failed++
		}
		time.Sleep(2 * time.Millisecond)
		if i == 10 {
			swap("..v4")
		}
	}
	version("..v5", "token-three-ccccccc")
	swap("..v5")
	until("Bearer token-three-ccccccc")

	// The sequence: one, then two, then three; nothing else, no going back.
	order := map[string]int{"Bearer token-one-aaaaaaaa": 1, "Bearer token-two-bbbbbbbb": 2, "Bearer token-three-ccccccc": 3}
	last := 0
	for i, v := range up.values() {
		n, ok := order[v]
		if !ok || n < last {
			t.Fatalf("request %d carried %q after value %d", i, v, last)
		}
		last = n
	}
	if failed != 0 {
		t.Errorf("%d requests failed during the rotation", failed)
	}
	if got := counter(t, h.p, "zerohop_credential_reloads_total", "result", "ok"); got != 3 {
		t.Errorf("reloads ok = %v; want 3", got)
	}
	if got := counter(t, h.p, "zerohop_credential_reloads_total", "result", "error"); got < 2 {
		t.Errorf("reloads error = %v; want the missing and the empty file counted", got)
	}
	noSecret(t, h, "token-one", "token-two", "token-three")
}

// TestCredentialsMissingFileAtStart: there is no value to keep, so the
// proxy does not start (and the error does not quote the file).
func TestCredentialsMissingFileAtStart(t *testing.T) {
	cfg := config.Default()
	cfg.Clusters = []config.Cluster{cluster("main", "http://127.0.0.1:1")}
	cfg.Clusters[0].Credentials = &config.Credentials{Type: "bearer", File: filepath.Join(t.TempDir(), "absent")}
	if _, err := proxy.New(cfg, proxy.Options{Logger: testLogger()}); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("New with a missing credential file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("abc\x01secret-part"), 0o600)
	cfg.Clusters[0].Credentials.File = bad
	if _, err := proxy.New(cfg, proxy.Options{Logger: testLogger()}); err == nil || strings.Contains(err.Error(), "secret-part") {
		t.Fatalf("New with an invalid credential: %v (must fail without quoting it)", err)
	}
}

// TestCredentialsCachePartition: responses fetched with a credential are
// shared within the pod but keyed by the credential's partition: two
// routes to the same URLs through clusters with different credentials
// never get each other's stored response, a rotation keeps the entries,
// and the app's client (the real one, reading the same shared memory)
// does not serve such an entry itself: it asks the sidecar, which serves
// the hit. A route without credentials is the control: there the client
// hits in shared memory.
func TestCredentialsCachePartition(t *testing.T) {
	dir := t.TempDir()
	fileA, fileB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeSecret(t, fileA, "credential-of-a-123")
	writeSecret(t, fileB, "credential-of-b-456")
	up := &credUpstream{field: "X-Api-Key"}
	tenant := func(w http.ResponseWriter, r *http.Request, n int64) {
		up.mu.Lock()
		up.seen = append(up.seen, r.Header.Get("X-Api-Key"))
		up.mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=600")
		switch r.Header.Get("X-Api-Key") {
		case "credential-of-a-123":
			io.WriteString(w, "for-a")
		case "credential-of-b-456":
			io.WriteString(w, "for-b")
		default:
			io.WriteString(w, "for-nobody")
		}
	}
	h := newHarness(t, harnessOptions{handler: tenant, config: func(cfg *config.Config) {
		a, b := cluster("a", cfg.Clusters[0].Endpoints[0].URL), cluster("b", cfg.Clusters[0].Endpoints[0].URL)
		a.Credentials = &config.Credentials{Type: "header", Header: "X-Api-Key", File: fileA, CheckInterval: 5 * time.Millisecond}
		b.Credentials = &config.Credentials{Type: "header", Header: "X-Api-Key", File: fileB, CheckInterval: 5 * time.Millisecond}
		cfg.Clusters = append(cfg.Clusters, a, b)
		cfg.Routes = []config.Route{
			{Name: "a", Match: config.Match{PathPrefix: "/t/", Headers: map[string]string{"X-Tenant": "a"}}, Cluster: "a"},
			{Name: "b", Match: config.Match{PathPrefix: "/t/"}, Cluster: "b"},
			{Name: "plain", Cluster: "main"},
		}
	}})
	get := func(path string, kv ...string) string {
		t.Helper()
		r := h.get(path, kv...)
		if r.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, r.StatusCode)
		}
		return r.body
	}
	if b := get("/t/1", "X-Tenant", "a"); b != "for-a" {
		t.Fatalf("tenant a: %q", b)
	}
	if b := get("/t/1"); b != "for-b" {
		t.Fatalf("tenant b got %q: another credential's stored response", b)
	}
	if b := get("/t/1", "X-Tenant", "a"); b != "for-a" || len(up.values()) != 2 {
		t.Fatalf("tenant a again: %q after %d upstream requests; want a hit", b, len(up.values()))
	}
	// A rotation keeps the partition, and so the entries.
	writeSecret(t, fileA, "credential-of-a-789")
	time.Sleep(20 * time.Millisecond)
	if b := get("/t/1", "X-Tenant", "a"); b != "for-a" || len(up.values()) != 2 {
		t.Fatalf("after a rotation: %q after %d upstream requests; want the stored response", b, len(up.values()))
	}
	if _, _, ok := h.w.GetStale(nil, h.key("/t/1")); ok {
		t.Error("a credential's response is stored under the URL's key")
	}
	get("/plain") // the control, stored under its URL's key
	upstreamBefore := len(up.values())

	// The app's client, on the same shared memory, addressing the
	// sidecar directly (reverse-mode routes).
	c, err := zerohop.Open(h.dir, &zerohop.Options{Direct: true, Sidecar: h.addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hc := &http.Client{Transport: c.Transport()}
	fetch := func(path string) string {
		req, _ := http.NewRequest("GET", "http://"+h.addr()+path, nil)
		req.Header.Set("X-Tenant", "a")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	before := c.Stats()
	if b := fetch("/plain"); b != "for-nobody" || c.Stats().Hits != before.Hits+1 {
		t.Fatalf("control: %q, client hits %d -> %d; want a hit in shared memory", b, before.Hits, c.Stats().Hits)
	}
	seen := counter(t, h.p, "zerohop_requests_total", "", "")
	if b := fetch("/t/1"); b != "for-a" {
		t.Fatalf("client, partitioned: %q", b)
	}
	if c.Stats().Hits != before.Hits+1 || counter(t, h.p, "zerohop_requests_total", "", "") != seen+1 || len(up.values()) != upstreamBefore {
		t.Errorf("partitioned entry: client hits %d (want %d), sidecar requests +%v (want +1, its hit), upstream +%d (want 0)",
			c.Stats().Hits, before.Hits+1, counter(t, h.p, "zerohop_requests_total", "", "")-seen, len(up.values())-upstreamBefore)
	}
}
