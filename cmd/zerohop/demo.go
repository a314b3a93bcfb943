package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/sidecar"
)

func newDemoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run an origin, the sidecar and a small app on loopback, showing zero-hop hits",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "hits", Value: 200000, Usage: "shared-memory hits to time"},
		},
		Action: func(c *cli.Context) error { return runDemo(c.App.Writer, c.Int("hits")) },
	}
}

func runDemo(out io.Writer, hits int) error {
	dir, err := os.MkdirTemp("", "zerohop-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// 1. An origin: a catalog service with cacheable JSON.
	var originRequests atomic.Int64
	origin := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originRequests.Add(1)
		time.Sleep(2 * time.Millisecond) // a real service takes a while
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("ETag", `"`+strings.ReplaceAll(r.URL.Path, "/", "-")+`"`)
		fmt.Fprintf(w, `{"path":%q,"price":42,"padding":%q}`, r.URL.Path, strings.Repeat("x", 900))
	}), ReadHeaderTimeout: 5 * time.Second}
	oln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go origin.Serve(oln)
	defer origin.Close()
	originURL := "http://" + oln.Addr().String()

	// 2. The sidecar on its embedded defaults (forward proxy), with a
	// private cache directory and free ports.
	cfg := config.Default()
	cfg.Cache.Dir = dir
	cfg.Cache.Size = 32 * config.MiB
	cfg.Invalidation.Log = dir + "/inval/inval.log"
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Admin.Address = "127.0.0.1:0"
	// The demo's origin is on loopback, which a forward listener refuses
	// unless told otherwise.
	cfg.Listeners[0].Forward.AllowLoopback = true
	if err := cfg.Validate(); err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := sidecar.Start(cfg, sidecar.Options{Logger: quiet})
	if err != nil {
		return err
	}
	defer s.Shutdown(context.Background())
	sidecarAddr := s.Addr(cfg.Listeners[0].Name)

	// 3. The app: an http.Client whose Transport is the zerohop client.
	zc, err := zerohop.Open(dir, &zerohop.Options{Sidecar: sidecarAddr})
	if err != nil {
		return err
	}
	defer zc.Close()
	app := &http.Client{Transport: zc.Transport()}

	fmt.Fprintf(out, "zerohop demo\n  origin   %s\n  sidecar  %s (forward proxy; admin %s)\n  cache    %s\n\n", originURL, sidecarAddr, s.AdminAddr(), dir)
	fmt.Fprintf(out, "%-28s %-6s %-10s %s\n", "request", "status", "latency", "Cache-Status")
	get := func(u string) (time.Duration, string, int, error) {
		t0 := time.Now()
		resp, err := app.Get(u)
		if err != nil {
			return 0, "", 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(t0), resp.Header.Get("Cache-Status"), resp.StatusCode, nil
	}
	for i := 1; i <= 3; i++ {
		u := fmt.Sprintf("%s/items/%d", originURL, i)
		for _, label := range []string{"first", "again"} {
			d, cs, code, err := get(u)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%-28s %-6d %-10s %s\n", fmt.Sprintf("GET /items/%d (%s)", i, label), code, d.Round(100*time.Nanosecond), cs)
		}
	}

	// 4. Many hits: through the lookup API with a reusable buffer, and
	// through the whole http.Client round trip.
	u, _ := url.Parse(originURL + "/items/1")
	buf := make([]byte, 8192)
	t0 := time.Now()
	for i := 0; i < hits; i++ {
		if _, _, ok := zc.Get(buf, "GET", "http", u.Host, "/items/1", nil); !ok {
			return fmt.Errorf("demo: unexpected miss")
		}
	}
	perLookup := time.Since(t0) / time.Duration(hits)
	n := hits / 20
	t0 = time.Now()
	for i := 0; i < n; i++ {
		if _, _, _, err := get(u.String()); err != nil {
			return err
		}
	}
	perRoundTrip := time.Since(t0) / time.Duration(n)

	// 5. The same hit for an app without the library: served by the
	// sidecar over HTTP (HTTP_PROXY style).
	plain := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: sidecarAddr})}}
	n2 := 2000
	t0 = time.Now()
	var cs string
	for i := 0; i < n2; i++ {
		resp, err := plain.Get(u.String())
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		cs = resp.Header.Get("Cache-Status")
	}
	perSidecarHit := time.Since(t0) / time.Duration(n2)

	fmt.Fprintf(out, "\naverage cost of a hit (1 KiB body)\n")
	fmt.Fprintf(out, "  zero-hop lookup, app's own buffer     %8s  (%d lookups)\n", perLookup, hits)
	fmt.Fprintf(out, "  zero-hop http.Client round trip       %8s  (%d requests)\n", perRoundTrip, n)
	fmt.Fprintf(out, "  sidecar over loopback HTTP            %8s  (%d requests; %s)\n", perSidecarHit, n2, cs)
	fmt.Fprintf(out, "\norigin requests: %d (for %d app requests)\n", originRequests.Load(), 6+n+n2)
	st := zc.Stats()
	fmt.Fprintf(out, "client stats: hits=%d misses=%d bypassed=%d torn-retries=%d corrupt=%d\n",
		st.Hits, st.Misses, st.Bypassed, st.Cache.TornRetries, st.Cache.Corrupt)

	// 6. The sidecar's own metrics, as Prometheus scrapes them: its own
	// requests, and the app's zero-hop hits, which never reached it, from
	// the counters file the client publishes (once a second; now here).
	zc.PublishCounters()
	resp, err := http.Get("http://" + s.AdminAddr() + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "zerohop_requests_total") || strings.HasPrefix(l, "zerohop_shm_entries") ||
			strings.HasPrefix(l, "zerohop_cache_stored_total") || strings.HasPrefix(l, "zerohop_shm_inserts_total") ||
			strings.HasPrefix(l, "zerohop_app_hits_total") || strings.HasPrefix(l, "zerohop_app_misses_total") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	fmt.Fprintf(out, "\nsidecar metrics (http://%s/metrics):\n", s.AdminAddr())
	for _, l := range lines {
		fmt.Fprintln(out, "  "+l)
	}
	return nil
}
