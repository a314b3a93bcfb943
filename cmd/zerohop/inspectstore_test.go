package main_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// inspectEntry is an entry of `inspect --json` / `keys --json`.
type inspectEntry struct {
	URL     string            `json:"url"`
	Kind    string            `json:"kind"`
	Variant map[string]string `json:"variant"`
	Status  int               `json:"status"`
	Tags    []string          `json:"tags"`
	Where   []string          `json:"where"`
	Body    int               `json:"body_bytes"`
	Headers http.Header       `json:"headers"`
}

func runZerohop(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestInspectStore runs a real sidecar with a store and a small cache
// file: `inspect` and `keys` ask its admin endpoint (behind a token) for
// the store's side. A Vary'd URL lists each variant with where it lives:
// "both" while fresh, "store" once evicted from shared memory by other
// traffic; an unreachable admin endpoint falls back to shared memory and
// says so.
func TestInspectStore(t *testing.T) {
	body := make([]byte, 200<<10) // incompressible: the sidecar would gzip a repetitive one
	rand.Read(body)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		if strings.HasPrefix(r.URL.Path, "/big/") {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(body)
			return
		}
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("Surrogate-Key", "items item-42")
		io.WriteString(w, "hello "+r.Header.Get("Accept-Language"))
	}))
	defer origin.Close()
	const token = "inspect-secret-0123456789"
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	yaml := fmt.Sprintf(`cache: {size: 8MiB, region_size: 1MiB, max_object_size: 512KiB}
store: {path: %q}
admin: {token: %s}
`, filepath.Join(t.TempDir(), "store"), token)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg, "ZEROHOP_CACHE_SIZE=8MiB") // the environment wins over the file
	get := func(path, lang string) {
		req, _ := http.NewRequest("GET", origin.URL+path, nil)
		if lang != "" {
			req.Header.Set("Accept-Language", lang)
		}
		resp, err := d.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	url := origin.URL + "/items/42"
	get("/items/42", "en")
	get("/items/42", "fr")
	admin := []string{"--cache-dir", d.dir, "--admin", d.admin, "--admin-token", token}
	inspect := func(args ...string) (entries []inspectEntry, note string) {
		t.Helper()
		out, _ := runZerohop(t, append(append([]string{"inspect", "--json"}, admin...), append(args, url)...)...)
		var doc struct {
			Entries []inspectEntry `json:"entries"`
			Note    string         `json:"note"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("inspect --json: %v\n%s", err, out)
		}
		return doc.Entries, doc.Note
	}
	wheres := func(es []inspectEntry) string {
		var ws []string
		for _, e := range es {
			w := e.Kind + ":" + e.Variant["accept-language"] + "=" + strings.Join(e.Where, "+")
			ws = append(ws, w)
		}
		return strings.Join(ws, " ")
	}
	// The store writes behind: wait for the three entries to reach it.
	const both = "vary:=shm+store response:en=shm+store response:fr=shm+store"
	waitFor(t, func() bool { es, _ := inspect(); return wheres(es) == both }, "the variants in shm and store")
	es, note := inspect()
	if note != "shared memory and store" || es[1].Status != 200 || es[1].Headers.Get("Vary") != "Accept-Language" {
		t.Errorf("inspect: %q %+v", note, es[1])
	}
	out, code := runZerohop(t, append([]string{"inspect"}, append(admin, url)...)...)
	if code != 0 || strings.Count(out, "in both") != 3 || !strings.Contains(out, `variant accept-language="fr"`) {
		t.Errorf("inspect (text): exit %d\n%s", code, out)
	}
	out, _ = runZerohop(t, append([]string{"keys", "--tag", "item-42"}, admin...)...)
	if strings.Count(out, " both ") != 2 || !strings.Contains(out, "WHERE") {
		t.Errorf("keys --tag:\n%s", out)
	}

	// Other traffic, 12 MiB through an 8 MiB file, evicts the variants
	// from shared memory; the store keeps them.
	for i := range 60 {
		get(fmt.Sprintf("/big/%d", i), "")
	}
	const stored = "vary:=store response:en=store response:fr=store"
	if es, note = inspect(); wheres(es) != stored {
		t.Fatalf("after eviction: %s (%s), want %s", wheres(es), note, stored)
	}
	if es[2].Body != len("hello fr") || es[2].Headers.Get("Vary") != "Accept-Language" || strings.Join(es[2].Tags, ",") != "items,item-42" {
		t.Errorf("store-only variant: %+v", es[2])
	}
	out, code = runZerohop(t, append([]string{"keys", "--prefix", origin.URL + "/items/"}, admin...)...)
	if code != 0 || strings.Count(out, " store ") != 2 {
		t.Errorf("keys --prefix after eviction: exit %d\n%s", code, out)
	}
	var keys struct {
		Total   int            `json:"total"`
		More    bool           `json:"more_in_store"`
		Entries []inspectEntry `json:"entries"`
	}
	out, _ = runZerohop(t, append([]string{"keys", "--json", "--limit", "5", "--prefix", origin.URL + "/big/"}, admin...)...)
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys.Entries) != 5 || !keys.More {
		t.Errorf("keys --limit 5 over 60: %v %d entries, more %v\n%s", err, len(keys.Entries), keys.More, out)
	}

	for _, bad := range []string{"-1", "10001"} { // out of range: refused, not clamped
		if out, code := runZerohop(t, append([]string{"keys", "--limit", bad}, admin...)...); code == 0 || !strings.Contains(out, "want 0 to 10000") {
			t.Errorf("keys --limit %s: exit %d, want an error naming the range\n%s", bad, code, out)
		}
	}

	// Without the token, the store's side is refused; an unreachable admin
	// endpoint: shared memory only, said.
	resp, err := http.Get("http://" + d.admin + "/cache/keys")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/cache/keys without the token: %v %v", err, resp)
	}
	if resp != nil {
		resp.Body.Close()
	}
	out, code = runZerohop(t, "inspect", "--cache-dir", d.dir, "--admin", freeAddr(t), url)
	if code != 1 || !strings.Contains(out, "not in shared memory (shared memory only: the sidecar's admin endpoint") {
		t.Errorf("inspect without the admin endpoint: exit %d\n%s", code, out)
	}
}
