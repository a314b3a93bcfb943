package zerohop_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/shm"
	"github.com/zerohop/zerohop/shm/appcounters"
)

// TestCountersPublished drives each kind of request through the transport
// and reads the counters file as the sidecar would.
func TestCountersPublished(t *testing.T) {
	dir := t.TempDir()
	w, err := shm.OpenWriter(dir, &shm.Options{Size: 2 << 20, RegionSize: 64 << 10, HeartbeatInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := os.Mkdir(filepath.Join(dir, "inval"), 0o755); err != nil { // the sidecar's tailer makes it
		t.Fatal(err)
	}
	sc := newSidecar(t)
	c, err := zerohop.Open(dir, &zerohop.Options{Sidecar: strings.TrimPrefix(sc.URL, "http://"), MaxWriterSilence: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	path, err := c.CountersFile()
	if err != nil || filepath.Dir(path) != filepath.Join(dir, "inval") {
		t.Fatalf("CountersFile %q, %v", path, err)
	}
	f := &fixture{w: w, c: c, sidecar: sc, http: &http.Client{Transport: c.Transport()}}
	f.put(t, "/a", nil)
	do := func(method, target string, h http.Header) {
		req, _ := http.NewRequest(method, "http://api.example"+target, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := f.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	do("GET", "/a", nil)                                         // hit
	do("GET", "/a", nil)                                         // hit
	do("GET", "/a", http.Header{"If-None-Match": {`"e1"`}})      // hit, 304
	do("GET", "/missing", nil)                                   // miss
	do("DELETE", "/a", nil)                                      // bypass: method
	do("GET", "/a", http.Header{"Range": {"bytes=0-1"}})         // bypass: conditional
	do("GET", "/a", http.Header{"Cache-Control": {"no-cache"}})  // bypass: no_cache
	do("GET", "/a", http.Header{"Cache-Control": {"max-age=0"}}) // bypass: no_cache
	c.PublishCounters()

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, v, err := appcounters.Parse(b)
	if err != nil || h.Client != "go" || h.PID != uint32(os.Getpid()) {
		t.Fatalf("Parse: %+v %v", h, err)
	}
	body := len("cached /a")
	want := map[int]uint64{
		appcounters.Hits: 3, appcounters.NotModified: 1, appcounters.Misses: 1,
		appcounters.BypassMethod: 1, appcounters.BypassConditional: 1, appcounters.BypassNoCache: 2, appcounters.BypassBody: 0,
		appcounters.ServedBytes: uint64(2 * body), appcounters.LookupHits: 3, appcounters.LookupMisses: 1,
	}
	for i, n := range want {
		if v[i] != n {
			t.Errorf("%s = %d; want %d", appcounters.Names[i], v[i], n)
		}
	}
	s := c.Stats()
	if s.Bypassed != 4 || s.BypassedBy["no_cache"] != 2 || s.ServedBytes != uint64(2*body) {
		t.Errorf("Stats %+v", s)
	}

	// Close publishes a last time and releases the lock: the sidecar's
	// collector folds the file in and removes it.
	do("GET", "/a", nil)
	c.Close()
	col := appcounters.NewCollector(filepath.Dir(path), 0)
	snap := col.Scan()
	if snap.Departed != 1 || snap.Totals[appcounters.Hits] != 4 {
		t.Errorf("after Close: %+v", snap)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file left after fold: %v", err)
	}
}

// TestCountersOff: CountersDir "off" and a missing directory publish
// nothing, and the client works on.
func TestCountersOff(t *testing.T) {
	dir := t.TempDir()
	w, err := shm.OpenWriter(dir, &shm.Options{Size: 2 << 20, RegionSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, o := range []*zerohop.Options{{CountersDir: "off"}, nil} { // nil: inval/ does not exist
		c, err := zerohop.Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := c.CountersFile(); p != "" || (o == nil && err == nil) {
			t.Errorf("options %+v: counters file %q, %v", o, p, err)
		}
		c.PublishCounters()
		c.Close()
	}
}
