package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
)

// TestInspectAndKeys caches a Vary'd URL in two variants through a real
// sidecar and reads them back with `zerohop inspect` and `zerohop keys`.
func TestInspectAndKeys(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("Surrogate-Key", "items item-42")
		io.WriteString(w, "hello "+r.Header.Get("Accept-Language"))
	}))
	defer origin.Close()
	d := startDaemon(t)
	url := origin.URL + "/items/42"
	for _, lang := range []string{"en", "fr"} {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Accept-Language", lang)
		resp, err := d.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	run := func(args ...string) (string, int) {
		// This sidecar has no store: its admin endpoint says so.
		args = append([]string{args[0], "--admin", d.admin}, args[1:]...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	out, code := run("inspect", "--cache-dir", d.dir, url)
	for _, want := range []string{"3 entries", "vary marker: varies on accept-language", `variant accept-language="en"`,
		`variant accept-language="fr"`, "status 200", "tags: items, item-42", "Vary: Accept-Language", "body 8 bytes"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("inspect exit %d", code)
	}

	out, _ = run("inspect", "--json", "--cache-dir", d.dir, url)
	var doc struct {
		Entries []struct {
			Kind         string            `json:"kind"`
			Variant      map[string]string `json:"variant"`
			Status       int               `json:"status"`
			FreshSeconds int64             `json:"fresh_seconds"`
			Where        []string          `json:"where"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Entries) != 3 {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	if e := doc.Entries[1]; e.Kind != "response" || e.Variant["accept-language"] != "en" || e.Status != 200 ||
		e.FreshSeconds < 200 || e.FreshSeconds > 300 || strings.Join(e.Where, ",") != "shm" {
		t.Errorf("first variant: %+v", e)
	}

	if out, code = run("inspect", "--cache-dir", d.dir, origin.URL+"/nothing"); code != 1 || !strings.Contains(out, "not in shared memory (shared memory only: the sidecar runs without a store)") {
		t.Errorf("inspect of an uncached URL: exit %d\n%s", code, out)
	}

	out, _ = run("keys", "--cache-dir", d.dir, "--tag", "item-42")
	if strings.Count(out, url) != 2 || !strings.Contains(out, `accept-language="fr"`) {
		t.Errorf("keys --tag:\n%s", out)
	}
	if out, code = run("keys", "--cache-dir", d.dir, "--prefix", origin.URL+"/other"); code != 1 || strings.Contains(out, url) {
		t.Errorf("keys --prefix other: exit %d\n%s", code, out)
	}
	out, _ = run("keys", "--json", "--cache-dir", d.dir, "--prefix", origin.URL+"/items/")
	var keys struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil || keys.Total != 2 {
		t.Errorf("keys --json: %v %+v\n%s", err, keys, out)
	}
}
