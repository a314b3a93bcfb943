package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/bench"
)

func newBenchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "run the latency suite side by side with nginx, Varnish, HAProxy and Redis (those installed)",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "duration", Value: 3 * time.Second, EnvVars: []string{"ZEROHOP_BENCH_DURATION"}, Usage: "length of each measurement"},
			&cli.IntFlag{Name: "rate", Value: 1000, EnvVars: []string{"ZEROHOP_BENCH_RATE"}, Usage: "open-loop requests per second"},
			&cli.IntFlag{Name: "conns", Value: 8, EnvVars: []string{"ZEROHOP_BENCH_CONNS"}, Usage: "concurrency of throughput runs"},
			&cli.IntFlag{Name: "body", Value: 1024, Usage: "cached body size in bytes"},
			&cli.StringFlag{Name: "only", Usage: "comma-separated scenario name fragments"},
			&cli.StringFlag{Name: "json", Usage: "write the report as JSON to `FILE`"},
			&cli.StringFlag{Name: "svg", Usage: "write a latency plot to `FILE`"},
			&cli.StringFlag{Name: "sidecar-config", Usage: "run the sidecar with this zerohop.yaml `FILE` (`zerohop run --config`; its first listener must be a forward one). The suite's --listen, --admin and --cache-dir still override the file; ${BENCH_ORIGIN} in it becomes the bench origin's host:port; relative paths are relative to the file's directory. Examples: bench/chains/"},
			&cli.GenericFlag{Name: "header", Aliases: []string{"H"}, Value: &headerFlag{}, Usage: "add the request field `HEADER` ('Name: value') to the sidecar scenarios' requests (sidecar-hit, sidecar-miss), e.g. the API key a --sidecar-config requires; repeatable"},
		},
		Subcommands: []*cli.Command{{
			Name:      "compare",
			Usage:     "fail when a ratio in NEW is worse than in BASE beyond the tolerance",
			ArgsUsage: "BASE.json NEW.json",
			Flags:     []cli.Flag{&cli.Float64Flag{Name: "tolerance", Value: 0.25, Usage: "allowed relative worsening"}},
			Action: func(c *cli.Context) error {
				if c.NArg() != 2 {
					return fmt.Errorf("compare takes BASE.json NEW.json")
				}
				base, err := bench.ReadReport(c.Args().Get(0))
				if err != nil {
					return err
				}
				next, err := bench.ReadReport(c.Args().Get(1))
				if err != nil {
					return err
				}
				if reg := bench.Compare(base, next, c.Float64("tolerance")); len(reg) > 0 {
					return cli.Exit("regressions:\n  "+strings.Join(reg, "\n  "), 1)
				}
				fmt.Fprintln(c.App.Writer, "no ratio regressed beyond the tolerance")
				return nil
			},
		}},
		Action: func(c *cli.Context) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			var only []string
			if s := c.String("only"); s != "" {
				only = strings.Split(s, ",")
			}
			hdr := c.Generic("header").(*headerFlag).h
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			rep, err := bench.Run(ctx, bench.Options{Zerohop: self, Duration: c.Duration("duration"),
				Rate: c.Int("rate"), Conns: c.Int("conns"), BodySize: c.Int("body"), Only: only,
				SidecarConfig: c.String("sidecar-config"), Headers: hdr})
			if err != nil {
				return err
			}
			rep.WriteTable(c.App.Writer)
			if p := c.String("json"); p != "" {
				if err := rep.WriteJSON(p); err != nil {
					return err
				}
			}
			if p := c.String("svg"); p != "" {
				return rep.WriteSVG(p)
			}
			return nil
		},
	}
}

// headerFlag collects repeated --header 'Name: value' flags. Not a
// StringSliceFlag: that one splits on commas, which field values contain.
type headerFlag struct{ h http.Header }

func (f *headerFlag) Set(s string) error {
	k, v, err := bench.ParseHeader(s)
	if err != nil {
		return err
	}
	if f.h == nil {
		f.h = http.Header{}
	}
	f.h.Add(k, v)
	return nil
}

func (f *headerFlag) String() string { return "" }
