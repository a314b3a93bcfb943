package main_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// readmeForwardExample returns the environment assignments and the curl
// arguments of the README's forward-proxy example, as a reader would copy
// them: "export A=1 B=2" lines and "A=1 curl ..." prefixes.
func readmeForwardExample(t *testing.T) (env, curlArgs []string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## Without code changes: forward proxy")
	if !ok {
		t.Fatal("README has no forward-proxy section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatal("the forward-proxy section has no sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	for _, line := range strings.Split(block, "\n") {
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "export" {
			env = append(env, fields[1:]...)
			continue
		}
		for i, f := range fields {
			if f == "curl" {
				env = append(env, fields[:i]...) // VAR=value curl ...
				curlArgs = fields[i+1:]
			}
		}
	}
	if len(curlArgs) == 0 {
		t.Fatalf("no curl command in the README's example:\n%s", block)
	}
	return env, curlArgs
}

// TestReadmeForwardProxyExampleWithCurl runs the README's forward-proxy
// example with the real curl against a real sidecar: the response must
// come through the sidecar (Cache-Status from it, the origin seeing its
// Via), and the second one from its cache. curl reads only the lower-case
// http_proxy; an example that sets HTTP_PROXY alone sends curl straight
// to the origin, past the cache.
func TestReadmeForwardProxyExampleWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (.ci/run installs it)")
	}
	env, args := readmeForwardExample(t)

	// The origin is on 127.0.0.2: loopback, but not an address the
	// example's no_proxy (127.0.0.1) sends around the proxy.
	var mu sync.Mutex
	var vias []string
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		vias = append(vias, r.Header.Get("Via"))
		mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write([]byte("item 42\n"))
	}))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	origin.Listener.Close()
	origin.Listener = ln
	origin.Start()
	defer origin.Close()
	d := startDaemon(t) // allows loopback origins

	// The example as documented, pointed at this sidecar and origin.
	for i, kv := range env {
		env[i] = strings.ReplaceAll(kv, "127.0.0.1:8089", d.listen)
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "http://catalog.internal", origin.URL)
	}
	run := func() string {
		cmd := exec.Command(curl, append([]string{"-sS", "--max-time", "10"}, args...)...)
		// Only what the example sets, so that the test's own environment
		// cannot make it pass.
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v with %v: %v\n%s", args, env, err, out)
		}
		return string(out)
	}
	first := run()
	if !strings.Contains(first, "item 42") {
		t.Fatalf("curl got:\n%s", first)
	}
	mu.Lock()
	seen := append([]string(nil), vias...)
	mu.Unlock()
	if !strings.Contains(strings.ToLower(first), "cache-status: zerohop") || len(seen) != 1 || !strings.Contains(seen[0], "zerohop") {
		t.Fatalf("the README's example (env %v) did not go through the sidecar: origin saw Via %q; curl got:\n%s", env, seen, first)
	}
	if second := run(); !strings.Contains(strings.ToLower(second), "cache-status: zerohop; hit") {
		t.Errorf("the second request was not a hit from the sidecar's cache:\n%s", second)
	}
}
