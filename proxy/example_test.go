package proxy_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
	"github.com/zerohop/zerohop/shm"
)

// A program outside this module embeds the proxy: it parses a
// configuration, opens a cache file, and serves one listener's handler.
// The second GET is a hit from shared memory.
func ExampleNew() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "hello from "+r.URL.Path)
	}))
	defer origin.Close()

	dir, err := os.MkdirTemp("", "zerohop-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg, err := config.Parse("zerohop.yaml", []byte(`
listeners: [{name: api, mode: reverse, address: "127.0.0.1:0"}]
admin: {address: ""}
cache: {dir: `+dir+`, size: 8MiB, region_size: 1536KiB}
clusters: [{name: origin, endpoints: [{url: "`+origin.URL+`"}]}]
routes: [{name: all, cluster: origin}]
`))
	if err != nil {
		log.Fatal(err)
	}
	w, err := shm.OpenWriter(cfg.Cache.Dir, &shm.Options{Size: int64(cfg.Cache.Size), RegionSize: int64(cfg.Cache.RegionSize)})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	p, err := proxy.New(cfg, proxy.Options{Cache: w})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(p.Handler(cfg.Listeners[0]))
	defer srv.Close()

	for range 2 {
		res, err := http.Get(srv.URL + "/greeting")
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		hit := strings.Contains(res.Header.Get("Cache-Status"), "; hit")
		fmt.Printf("%s (hit: %v)\n", body, hit)
	}
	// Output:
	// hello from /greeting (hit: false)
	// hello from /greeting (hit: true)
}
