package main_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestAdminPurgeTimeoutParam checks that a bad timeout= on POST /purge is
// the caller's error (400), not the server's: a negative one used to fail
// the append with a 500.
func TestAdminPurgeTimeoutParam(t *testing.T) {
	d := startDaemon(t)
	for _, tt := range []struct {
		timeout string
		want    int
	}{
		{"-1s", http.StatusBadRequest},
		{"0s", http.StatusBadRequest},
		{"soon", http.StatusBadRequest},
		{"10h", http.StatusBadRequest},
		{"2s", http.StatusOK},
	} {
		form := url.Values{"key": {"http://example.test/a"}, "timeout": {tt.timeout}}
		resp, err := http.Post("http://"+d.admin+"/purge", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("timeout=%s: status %d %q; want %d", tt.timeout, resp.StatusCode, body, tt.want)
		}
	}
}
