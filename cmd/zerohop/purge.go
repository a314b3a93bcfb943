package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
)

func newPurgeCommand() *cli.Command {
	return &cli.Command{
		Name:  "purge",
		Usage: "append an invalidation (by URL, URL prefix, surrogate key or everything) to the log the sidecar applies",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "purge one `URL` (every Vary variant)"},
			&cli.StringFlag{Name: "prefix", Usage: "purge every URL under `URL`"},
			&cli.StringFlag{Name: "tag", Usage: "purge every response carrying surrogate key `TAG`"},
			&cli.BoolFlag{Name: "all", Usage: "purge everything"},
			&cli.BoolFlag{Name: "soft", Usage: "mark stale instead of removing (stale-while-revalidate then serves while one refresh runs)"},
			&cli.StringFlag{Name: "cache-dir", Value: "/var/run/zerohop", EnvVars: []string{"ZEROHOP_CACHE_DIR"}, Usage: "the shared cache `DIR`"},
			&cli.StringFlag{Name: "log", EnvVars: []string{"ZEROHOP_INVALIDATION_LOG"}, Usage: "the invalidation log `FILE` (default <cache-dir>/inval/inval.log)"},
			&cli.BoolFlag{Name: "wait", Value: true, Usage: "wait until the sidecar has applied the purge"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second},
		},
		Action: func(c *cli.Context) error {
			mode := invalidate.Hard
			if c.Bool("soft") {
				mode = invalidate.Soft
			}
			var rec invalidate.Record
			switch n := countSet(c.String("key") != "", c.String("prefix") != "", c.String("tag") != "", c.Bool("all")); {
			case n != 1:
				return cli.Exit("purge: give exactly one of --key, --prefix, --tag or --all", 2)
			case c.String("key") != "":
				if _, _, _, err := invalidate.SplitURL(c.String("key")); err != nil {
					return cli.Exit("purge: --key: "+err.Error(), 2)
				}
				rec = invalidate.KeyRecord(c.String("key"), mode)
			case c.String("prefix") != "":
				if _, _, _, err := invalidate.SplitPrefix(c.String("prefix")); err != nil {
					return cli.Exit("purge: --prefix: "+err.Error(), 2)
				}
				rec = invalidate.PrefixRecord(c.String("prefix"), mode)
			case c.String("tag") != "":
				rec = invalidate.TagRecord(c.String("tag"), mode)
			default:
				rec = invalidate.AllRecord(mode)
			}
			path := c.String("log")
			if path == "" {
				path = filepath.Join(c.String("cache-dir"), "inval", "inval.log")
			}
			host, _ := os.Hostname()
			// The cache's published sequence number is the floor of ours:
			// whatever the log holds, "applied" then means applied.
			lo := &invalidate.LogOptions{Origin: "cli@" + host}
			r, rerr := shm.Open(c.String("cache-dir"), nil)
			if rerr == nil {
				defer r.Close()
				lo.Applied = r
			}
			lg, err := invalidate.OpenLog(path, lo)
			if err != nil {
				return err
			}
			defer lg.Close()
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			seq, err := lg.Append(ctx, rec)
			if err != nil {
				return err
			}
			if !c.Bool("wait") {
				fmt.Fprintf(c.App.Writer, "appended %s as seq %d\n", rec.String(), seq)
				return nil
			}
			if rerr != nil {
				return fmt.Errorf("appended seq %d, but cannot watch the cache to wait: %w", seq, rerr)
			}
			if err := invalidate.WaitApplied(ctx, r, seq); err != nil {
				return cli.Exit(fmt.Sprintf("appended seq %d; not applied yet: %v (is the sidecar running?)", seq, err), 1)
			}
			fmt.Fprintf(c.App.Writer, "applied %s as seq %d\n", rec.String(), seq)
			return nil
		},
	}
}

func countSet(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
