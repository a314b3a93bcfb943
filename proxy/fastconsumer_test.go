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

// TestFastHitConsumerNotCarried: on one connection, a hit on a route
// without filters after an authenticated hit on another route is logged
// without the earlier request's consumer.
func TestFastHitConsumerNotCarried(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	const key = "key-1111111111111111111111111111111"
	writeAtomic(t, keys, []byte(proxy.APIKeyLine("one", "s", key)+"\n"))
	h := newHarness(t, harnessOptions{handler: authUpstream, config: func(c *config.Config) {
		c.Auth = []config.Authenticator{{Name: "a", APIKey: &config.APIKeyAuth{File: keys, Header: "X-Api-Key", Realm: "zerohop"}}}
		c.Routes = append([]config.Route{{Name: "keyed", Cluster: "main", Match: config.Match{PathPrefix: "/k/"}, Auth: []string{"a"}}}, c.Routes...)
	}})
	conn, err := net.Dial("tcp", h.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i, path := range []string{"/k/doc", "/open", "/k/doc", "/open"} { // misses, then hits
		id := "c-" + string(rune('0'+i))
		if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: app.local\r\nX-Api-Key: "+key+"\r\nX-Request-Id: "+id+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		want := any(nil)
		if path == "/k/doc" {
			want = "one"
		}
		if c := logged(h, id, "consumer"); c != want {
			t.Errorf("%s %s (%s): consumer %v; want %v", path, resp.Header.Get("Cache-Status"), id, c, want)
		}
	}
}
