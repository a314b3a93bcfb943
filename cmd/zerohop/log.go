package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// newLogCommand prints the request timelines the sidecar keeps (its admin
// endpoint GET /debug/requests): why one request was slow, without a
// tracing backend.
func newLogCommand() *cli.Command {
	return &cli.Command{
		Name:  "log",
		Usage: "show recent requests and their phases (filters, cache, coalescing, connect, upstream, transfer, store) from the sidecar's admin endpoint",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "admin", EnvVars: []string{"ZEROHOP_ADMIN"}, Usage: "the admin endpoint's `HOST:PORT` (default: admin.address of --config, else " + config.DefaultAdminAddress + ")"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"ZEROHOP_ADMIN_TOKEN"}, Usage: "the admin bearer `TOKEN` (default: admin.token of --config)"},
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"ZEROHOP_CONFIG"}, Usage: "read the admin address and token from `FILE`"},
			&cli.StringFlag{Name: "route", Usage: "only requests of route `NAME`"},
			&cli.StringFlag{Name: "status", Usage: "only responses with `STATUS` (503) or of a class (5xx)"},
			&cli.StringFlag{Name: "cache", Usage: "only requests with cache result `RESULT` (hit, miss, uri-miss, stale, bypass, method, ...)"},
			&cli.DurationFlag{Name: "min-duration", Usage: "only requests that took at least `DURATION`"},
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "at most `N` requests, newest first"},
			&cli.BoolFlag{Name: "slow", Usage: "read the ring of slow requests (tracing.slow_threshold) instead of recent ones"},
			&cli.BoolFlag{Name: "json", Usage: "print the JSON the admin endpoint returns"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second},
		},
		Action: runLog,
	}
}

func runLog(c *cli.Context) error {
	addr, token := c.String("admin"), c.String("token")
	if path := c.String("config"); path != "" && (addr == "" || token == "") {
		cfg, err := config.Load(path)
		if err != nil {
			return cli.Exit("log: "+err.Error(), 2)
		}
		if addr == "" {
			addr = cfg.Admin.Address
		}
		if token == "" {
			token = cfg.Admin.Token
		}
	}
	if addr == "" {
		addr = config.DefaultAdminAddress
	}
	if addr == "off" {
		return cli.Exit("log: the admin endpoint is off (ZEROHOP_ADMIN=off); give its address with --admin", 2)
	}
	q := url.Values{}
	for _, f := range []string{"route", "status", "cache"} {
		if v := c.String(f); v != "" {
			q.Set(f, v)
		}
	}
	if v := c.String("status"); v != "" {
		if _, ok := proxy.ParseStatusFilter(v); !ok {
			return cli.Exit("log: --status: want a status code (503) or a class (5xx), got "+strconv.Quote(v), 2)
		}
	}
	if d := c.Duration("min-duration"); d > 0 {
		q.Set("min_duration", d.String())
	}
	if n := c.Int("limit"); n > 0 {
		q.Set("limit", strconv.Itoa(n))
	}
	if c.Bool("slow") {
		q.Set("slow", "1")
	}
	u := "http://" + addr + "/debug/requests?" + q.Encode()
	req, err := http.NewRequestWithContext(c.Context, http.MethodGet, u, nil)
	if err != nil {
		return cli.Exit("log: "+err.Error(), 2)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: c.Duration("timeout")}).Do(req)
	if err != nil {
		return cli.Exit(fmt.Sprintf("log: %v (is the sidecar running, with its admin endpoint at %s?)", err, addr), 1)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return cli.Exit("log: "+err.Error(), 1)
	}
	if resp.StatusCode != http.StatusOK {
		return cli.Exit(fmt.Sprintf("log: %s: %s", resp.Status, strings.TrimSpace(string(body))), 1)
	}
	if c.Bool("json") {
		_, err := c.App.Writer.Write(body)
		return err
	}
	var out struct {
		Requests []proxy.TimelineRecord `json:"requests"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return cli.Exit("log: the admin endpoint's answer: "+err.Error(), 1)
	}
	w := c.App.Writer
	if w == nil {
		w = os.Stdout
	}
	printTimelines(w, out.Requests)
	return nil
}

// printTimelines writes one line per request, its phases last as
// start+duration in milliseconds, e.g. "cache 0.02+0.01  coalesce 0.03+101.20".
func printTimelines(w io.Writer, recs []proxy.TimelineRecord) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "(no requests match)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSTATUS\tCACHE\tMS\tMETHOD\tROUTE\tHOST\tTARGET\tREQUEST ID\tPHASES (ms: start+duration)")
	for _, r := range recs {
		route := r.Route
		if route == "" {
			route = "-"
		}
		var b strings.Builder
		for i, p := range r.Phases {
			if i > 0 {
				b.WriteString("  ")
			}
			fmt.Fprintf(&b, "%s %.2f+%.2f", p.Name, p.StartMs, p.DurationMs)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Local().Format("15:04:05.000"), r.Status, r.Cache,
			r.DurationMs, r.Method, route, r.Host, clipText(r.Target, 60), r.RequestID, b.String())
	}
	tw.Flush()
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
