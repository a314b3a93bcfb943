package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// TestAPIKeyMemo: on one keep-alive connection behind the fast path,
// where the connection remembers the last key a filter accepted
// (authmemo.go), every answer is the one a fresh check gives: the
// remembered key again, another valid key (its own consumer), an unknown
// key of the same length, a key valid for another route's authenticator,
// and a key removed by a rotation of the file.
func TestAPIKeyMemo(t *testing.T) {
	dir := t.TempDir()
	keysA, keysB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	const (
		key1 = "key-1111111111111111111111111111111"
		key2 = "key-2222222222222222222222222222222"
		key3 = "key-3333333333333333333333333333333" // in file b only
		bad  = "key-9999999999999999999999999999999"
	)
	writeAtomic(t, keysA, []byte(proxy.APIKeyLine("one", "s", key1)+"\n"+proxy.APIKeyLine("two", "s", key2)+"\n"))
	writeAtomic(t, keysB, []byte(proxy.APIKeyLine("three", "s", key3)+"\n"))
	h := newHarness(t, harnessOptions{handler: authUpstream, config: func(c *config.Config) {
		c.Auth = []config.Authenticator{
			{Name: "a", APIKey: &config.APIKeyAuth{File: keysA, Header: "X-Api-Key", Realm: "zerohop"}},
			{Name: "b", APIKey: &config.APIKeyAuth{File: keysB, Header: "X-Api-Key", Realm: "zerohop"}},
		}
		c.Routes[0].Auth = []string{"a"}
		c.Routes = append([]config.Route{{Name: "b", Cluster: "main", Match: config.Match{PathPrefix: "/b/"}, Auth: []string{"b"}}}, c.Routes...)
	}})
	conn, err := net.Dial("tcp", h.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func(path, key, id string) int {
		t.Helper()
		if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: app.local\r\nX-Api-Key: "+key+"\r\nX-Request-Id: "+id+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, s := range []struct {
		path, key, id string
		code          int
		consumer      any // logged; nil for a refusal
	}{
		{"/doc", key1, "m-1", 200, "one"}, // a miss: checked, remembered
		{"/doc", key1, "m-2", 200, "one"}, // a hit: from the memo
		{"/doc", key2, "m-3", 200, "two"}, // another valid key: its own consumer
		{"/doc", key2, "m-4", 200, "two"},
		{"/doc", bad, "m-5", 401, nil}, // same length, unknown
		{"/doc", key2, "m-6", 200, "two"},
		{"/b/doc", key2, "m-7", 401, nil}, // valid for a, not for b's authenticator
		{"/b/doc", key3, "m-8", 200, "three"},
		{"/doc", key3, "m-9", 401, nil},
	} {
		if code := get(s.path, s.key, s.id); code != s.code {
			t.Errorf("%s %s (%s): %d; want %d", s.path, s.key, s.id, code, s.code)
		}
		if c := logged(h, s.id, "consumer"); c != s.consumer {
			t.Errorf("%s: consumer %v; want %v", s.id, c, s.consumer)
		}
	}
	if n := counter(t, h.p, "zerohop_auth_results_total", "result", "ok"); n != 6 {
		t.Errorf("ok results %v; want 6 (a key from the memo is counted too)", n)
	}

	// Rotation: file a now holds key2 only. Once a new connection sees
	// it, the old connection, which remembers key1, must refuse key1.
	get("/doc", key1, "r-0")
	writeAtomic(t, keysA, []byte(proxy.APIKeyLine("two", "s", key2)+"\n"))
	if !eventually(func() bool { return h.get("/doc", "X-Api-Key", key1).StatusCode == 401 }) {
		t.Fatal("the rotation never took effect")
	}
	if code := get("/doc", key1, "r-1"); code != 401 {
		t.Errorf("a key removed by rotation, on the connection that remembered it: %d; want 401", code)
	}
	if code := get("/doc", key2, "r-2"); code != 200 {
		t.Errorf("a kept key after rotation: %d; want 200", code)
	}
}
