package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseHeader(t *testing.T) {
	for _, tt := range []struct{ in, name, value string }{
		{"X-Api-Key: abc", "X-Api-Key", "abc"},
		{"x-api-key:abc, def", "X-Api-Key", "abc, def"},
		{"X-Empty:", "X-Empty", ""},
		{"no colon", "", ""},
		{": v", "", ""},
		{"Bad Name: v", "", ""},
	} {
		n, v, err := ParseHeader(tt.in)
		if (err != nil) != (tt.name == "") || n != tt.name || v != tt.value {
			t.Errorf("ParseHeader(%q) = %q, %q, %v; want %q, %q", tt.in, n, v, err, tt.name, tt.value)
		}
	}
}

// TestSidecarConfigAndHeaders runs the real sidecar with a configuration
// file (an API key on a route that sets a response field, the key file
// next to the configuration, the origin's address substituted) and checks
// that the sidecar scenarios' requests carry Options.Headers through it.
func TestSidecarConfigAndHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "zerohop")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/zerohop").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfgDir := filepath.Join(dir, "chain")
	os.MkdirAll(cfgDir, 0o755)
	const key, salt = "test-key-0123456789", "s4lt"
	sum := sha256.Sum256([]byte(salt + key))
	os.WriteFile(filepath.Join(cfgDir, "keys"), []byte("bench:"+salt+":"+hex.EncodeToString(sum[:])+"\n"), 0o600)
	cfg := filepath.Join(cfgDir, "sidecar.yaml")
	os.WriteFile(cfg, []byte(`listeners:
  - {name: forward, address: 127.0.0.1:8089, mode: forward}
auth:
  - {name: keys, api_key: {file: keys, header: X-Api-Key}}
clusters:
  - {name: origin, endpoints: [{url: "http://${BENCH_ORIGIN}"}]}
routes:
  - name: bench
    match: {host: 127.0.0.1}
    cluster: origin
    auth: [keys]
    response_header_ops: {set: {X-Bench-Chain: "on"}}
`), 0o600)

	var progress strings.Builder
	e := &env{opts: Options{Zerohop: bin, SidecarConfig: cfg, Headers: http.Header{"X-Api-Key": {key}},
		Duration: 200 * time.Millisecond, Progress: &progress}, dir: dir, skipped: map[string]string{}}
	e.opts.defaults()
	e.body = []byte(strings.Repeat("z", e.opts.BodySize))
	defer e.stop()
	if err := e.start(); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	get := func(hdr http.Header) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: e.scAddr})}, Timeout: 10 * time.Second}
		req, _ := http.NewRequest(http.MethodGet, e.originURL+"/cache/item", nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	if resp, err := get(nil); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the key: %v %v; want 401 (the configuration is not in use)", resp, err)
	}
	if resp, err := get(e.opts.Headers); err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Bench-Chain") != "on" {
		t.Fatalf("with the key: %v %v; want 200 with X-Bench-Chain", resp, err)
	}
	for _, s := range e.scenarios() {
		if s.name != "sidecar-hit" && s.name != "sidecar-miss" {
			continue
		}
		if s.warm != nil {
			if err := s.warm(); err != nil {
				t.Fatalf("%s warm-up: %v", s.name, err)
			}
		}
		r := e.measure(s, modeClosed)
		if r.N == 0 || r.Errors > 0 {
			t.Errorf("%s: n=%d errors=%d: the header did not reach the sidecar", s.name, r.N, r.Errors)
		}
	}
}
