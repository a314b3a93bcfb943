package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/proxy"
)

func newLogCommand() *cli.Command {
	return &cli.Command{
		Name:  "log",
		Usage: "list the sidecar's recent (or slow) requests, newest first, filtered by route, status, cache result, duration",
		Description: fmt.Sprintf("Reads GET /requests on the admin endpoint: the last %d requests, and apart the last %d that took tracing.slow_threshold (default %v) or more (--slow), each with its phases (filters, cache, coalesce, connect, upstream, transfer, store) as start+duration in milliseconds.",
			proxy.RecentRequests, proxy.SlowRequests, proxy.SlowRequestThreshold),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "admin", Value: "127.0.0.1:9901", EnvVars: []string{"ZEROHOP_ADMIN"}, Usage: "the sidecar's admin `ADDR`"},
			&cli.StringFlag{Name: "admin-token", EnvVars: []string{"ZEROHOP_ADMIN_TOKEN"}, Usage: "bearer `TOKEN` of the admin endpoint"},
			&cli.StringFlag{Name: "route", Usage: "only requests of route `NAME`"},
			&cli.StringFlag{Name: "status", Usage: "only status `CODE` (503) or class (5xx)"},
			&cli.StringFlag{Name: "cache", Usage: "only cache result `RESULT` (hit, uri-miss, bypass, ...)"},
			&cli.DurationFlag{Name: "min-duration", Usage: "only requests that took at least `DURATION`"},
			&cli.BoolFlag{Name: "slow", Usage: "read the slow requests, kept apart from the recent ones"},
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "print at most `N` (0: all kept)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) error {
			q := url.Values{}
			for _, k := range []string{"route", "status", "cache"} {
				if v := c.String(k); v != "" {
					q.Set(k, v)
				}
			}
			if d := c.Duration("min-duration"); d > 0 {
				q.Set("min_duration", d.String())
			}
			if c.Bool("slow") {
				q.Set("slow", "1")
			}
			q.Set("limit", strconv.Itoa(c.Int("limit")))
			src := &topSource{base: "http://" + c.String("admin"), token: c.String("admin-token"), hc: &http.Client{Timeout: 5 * time.Second}}
			b, err := src.get(c.Context, "/requests?"+q.Encode())
			if err != nil {
				return fmt.Errorf("log: %w: %s", err, b)
			}
			if c.Bool("json") {
				_, err := c.App.Writer.Write(b)
				return err
			}
			var doc struct {
				Requests []proxy.RequestRecord `json:"requests"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				return fmt.Errorf("log: %w", err)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tSTATUS\tMS\tUPSTREAM MS\tCACHE\tROUTE\tMETHOD\tHOST\tTARGET\tREQUEST ID\tPHASES (ms: start+duration)")
			for _, r := range doc.Requests {
				route := r.Route
				if route == "" {
					route = "-"
				}
				fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.Format("15:04:05.000"), r.Status, r.DurationMs,
					r.UpstreamMs, r.Cache, route, r.Method, r.Host, r.Target, r.RequestID, phaseText(r.Phases)+errorText(r.Error))
			}
			return tw.Flush()
		},
	}
}

// phaseText is a request's phases as "name start+duration" (ms), e.g.
// "cache 0.02+0.01  coalesce 0.03+101.20".
func phaseText(ps []proxy.PhaseRecord) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, "%s %.2f+%.2f", p.Name, p.StartMs, p.DurationMs)
	}
	return b.String()
}

// errorText is how the upstream exchange failed, after the phases.
func errorText(e string) string {
	if e == "" {
		return ""
	}
	return "  error: " + e
}
