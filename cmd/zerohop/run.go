package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/sidecar"
)

// runFlags are the run command's flags; each has a ZEROHOP_* variable,
// as Kubernetes users set them in the pod spec. Flags override the file.
func runFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"ZEROHOP_CONFIG"}, Usage: "YAML configuration `FILE` (default: embedded defaults, forward proxy)"},
		&cli.StringFlag{Name: "listen", EnvVars: []string{"ZEROHOP_LISTEN"}, Usage: "`ADDR` of the first listener (default 127.0.0.1:8089)"},
		&cli.StringFlag{Name: "admin", EnvVars: []string{"ZEROHOP_ADMIN"}, Usage: "admin endpoint `ADDR` (\"off\" disables; default 127.0.0.1:9901)"},
		&cli.StringFlag{Name: "admin-token", EnvVars: []string{"ZEROHOP_ADMIN_TOKEN"}, Usage: "bearer `TOKEN` required by the admin endpoint"},
		&cli.StringFlag{Name: "cache-dir", EnvVars: []string{"ZEROHOP_CACHE_DIR"}, Usage: "shared cache `DIR` (default /var/run/zerohop)"},
		&cli.StringFlag{Name: "cache-size", EnvVars: []string{"ZEROHOP_CACHE_SIZE"}, Usage: "cache file `SIZE`, e.g. 256MiB"},
		&cli.StringFlag{Name: "log-level", EnvVars: []string{"ZEROHOP_LOG_LEVEL"}, Value: "info", Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", EnvVars: []string{"ZEROHOP_LOG_FORMAT"}, Value: "json", Usage: "json or text"},
		&cli.StringFlag{Name: "access-log", EnvVars: []string{"ZEROHOP_ACCESS_LOG"}, Value: "stdout", Usage: "stdout, stderr, off or a file `PATH`"},
		&cli.IntFlag{Name: "procs", EnvVars: []string{"ZEROHOP_PROCS"}, Usage: "how many CPUs run Go code at once (GOMAXPROCS); 0 keeps Go's default, the container's CPU limit. A sidecar usually does best with 1 or 2"},
		&cli.IntFlag{Name: "gc-percent", EnvVars: []string{"ZEROHOP_GC_PERCENT"}, Value: 400, Usage: "heap growth between garbage collections, in percent of the live heap (Go's GOGC, which wins when set). The sidecar's live heap is a few MiB: 400 collects a quarter as often as Go's 100, for ~12 MiB more heap under load"},
		&cli.BoolFlag{Name: "forward-allow-loopback", EnvVars: []string{"ZEROHOP_FORWARD_ALLOW_LOOPBACK"}, Usage: "let forward listeners fetch from loopback origins (listeners[].forward.allow_loopback; the sidecar's own addresses stay refused), e.g. to try zerohop against a local server"},
		&cli.DurationFlag{Name: "drain-timeout", EnvVars: []string{"ZEROHOP_DRAIN_TIMEOUT"}, Value: 25 * time.Second, Usage: "how long SIGTERM waits for in-flight requests"},
	}
}

func newRunCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "run the sidecar",
		Flags: runFlags(),
		Action: func(c *cli.Context) error {
			logger, err := newLogger(c.String("log-level"), c.String("log-format"), os.Stderr)
			if err != nil {
				return err
			}
			if n := c.Int("procs"); n < 0 {
				return fmt.Errorf("--procs %d: want 0 (Go's default) or more", n)
			} else if n > 0 {
				runtime.GOMAXPROCS(n)
			}
			if os.Getenv("GOGC") == "" {
				// The per-request garbage of a miss (~7 KiB) at a live heap of a
				// few MiB starts a collection every few hundred requests; on one
				// CPU those dominate the miss path's p99.
				debug.SetGCPercent(c.Int("gc-percent"))
			}
			override, err := overridesFrom(c)
			if err != nil {
				return err
			}
			cfg, err := loadConfig(c.String("config"), override)
			if err != nil {
				return err
			}
			access, closeAccess, err := openAccessLog(c.String("access-log"))
			if err != nil {
				return err
			}
			defer closeAccess()
			s, err := sidecar.Start(cfg, sidecar.Options{Logger: logger, AccessLog: access, Override: override})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if path := c.String("config"); path != "" {
				go func() {
					if err := s.Watch(ctx, path, cfg); err != nil {
						logger.Error("config watch stopped", "err", err)
					}
				}()
			}
			<-ctx.Done()
			logger.Info("shutting down: draining requests", "timeout", c.Duration("drain-timeout"))
			dctx, cancel := context.WithTimeout(context.Background(), c.Duration("drain-timeout"))
			defer cancel()
			return s.Shutdown(dctx)
		},
	}
}

// loadConfig reads path (or the defaults), applies override and validates.
func loadConfig(path string, override func(*config.Config)) (*config.Config, error) {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return nil, err
		}
	}
	override(cfg)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// overridesFrom turns the flags that were set into a function applied to
// every configuration, the first and each reloaded one.
func overridesFrom(c *cli.Context) (func(*config.Config), error) {
	var size config.Size
	if s := c.String("cache-size"); s != "" {
		var err error
		if size, err = config.ParseSize(s); err != nil {
			return nil, fmt.Errorf("--cache-size: %w", err)
		}
	}
	listen, admin, token, dir := c.String("listen"), c.String("admin"), c.String("admin-token"), c.String("cache-dir")
	loopback := c.Bool("forward-allow-loopback")
	return func(cfg *config.Config) {
		if loopback {
			for i := range cfg.Listeners {
				if cfg.Listeners[i].Mode == config.ModeForward {
					cfg.Listeners[i].Forward.AllowLoopback = true
				}
			}
		}
		if listen != "" && len(cfg.Listeners) > 0 {
			cfg.Listeners[0].Address = listen
		}
		switch admin {
		case "":
		case "off":
			cfg.Admin.Address = ""
		default:
			cfg.Admin.Address = admin
		}
		if token != "" {
			cfg.Admin.Token = token
		}
		if dir != "" {
			cfg.Cache.Dir = dir
			if cfg.Invalidation.Log == "" || strings.HasPrefix(cfg.Invalidation.Log, config.DefaultCacheDir) {
				cfg.Invalidation.Log = dir + "/inval/inval.log"
			}
		}
		if size > 0 {
			cfg.Cache.Size = size
		}
	}, nil
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not json or text", format)
}

func openAccessLog(dest string) (io.Writer, func(), error) {
	switch dest {
	case "off", "":
		return nil, func() {}, nil
	case "stdout":
		return os.Stdout, func() {}, nil
	case "stderr":
		return os.Stderr, func() {}, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("--access-log: %w", err)
	}
	return f, func() { f.Close() }, nil
}
