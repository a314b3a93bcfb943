package config_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/zerohop/zerohop/config"
)

func ExampleParse() {
	cfg, err := config.Parse("zerohop.yaml", []byte(`
listeners:
  - name: ingress
    address: 127.0.0.1:8080
    mode: reverse
clusters:
  - name: api
    endpoints: [{url: "http://10.0.0.7:8080"}]
routes:
  - name: everything
    cluster: api
`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.Listeners[0].Mode, cfg.Routes[0].Cluster, cfg.Clusters[0].Endpoints[0].Weight)
	fmt.Println(cfg.Cache.Dir, cfg.Cache.Size, cfg.Invalidation.Log)
	// Output:
	// reverse api 1
	// /var/run/zerohop 64MiB /var/run/zerohop/inval/inval.log
}

func ExampleParse_errors() {
	_, err := config.Parse("zerohop.yaml", []byte(`
cache:
  size: 64MB
routes:
  - name: r
    cluster: api2
    match: {methods: [get]}
    timeuot: 5s
`))
	fmt.Println(err)
	// Output:
	// zerohop.yaml:3: cache.size: ambiguous unit "MB" in "64MB": use a binary unit such as "MiB" (1024-based), or plain bytes
	// zerohop.yaml:6: routes[0].cluster: unknown cluster "api2"; no clusters are defined
	// zerohop.yaml:7: routes[0].match.methods[0]: method "get" is not upper case; methods are case-sensitive (did you mean "GET"?)
	// zerohop.yaml:8: routes[0].timeuot: unknown field (did you mean "timeout"?)
}

func ExampleWatcher() {
	dir, err := os.MkdirTemp("", "zerohop-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "zerohop.yaml")
	if err := os.WriteFile(path, []byte("cache: {size: 64MiB}\n"), 0o644); err != nil {
		log.Fatal(err)
	}

	cfg, err := config.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	changed := make(chan *config.Config)
	w := &config.Watcher{
		Path:    path,
		Current: cfg, // a change made before Run starts is still reported
		OnChange: func(c *config.Config) {
			select { // never block the Watcher once nobody listens
			case changed <- c:
			case <-ctx.Done():
			}
		},
		OnError: func(err error) { log.Print(err) }, // keep serving the old config
	}
	go w.Run(ctx)

	if err := os.WriteFile(path, []byte("cache: {size: 128MiB}\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	select {
	case c := <-changed:
		fmt.Println("new cache size:", c.Cache.Size)
	case <-ctx.Done():
		fmt.Println("timed out")
	}
	// Output:
	// new cache size: 128MiB
}
