// Package sidecar assembles the zerohop daemon: the cache writer, the
// proxy, its listeners, the admin endpoint and configuration reloads, with
// a graceful shutdown that drains requests and marks the cache file
// cleanly closed.
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
	"github.com/zerohop/zerohop/shm"
	"github.com/zerohop/zerohop/shm/appcounters"
	"github.com/zerohop/zerohop/store"
)

// Options tune a Sidecar beyond its configuration.
type Options struct {
	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
	// AccessLog receives one JSON line per request. Nil: none.
	AccessLog io.Writer
	// Override is applied to every configuration, the first and each
	// reloaded one, before validation (flags and environment variables).
	Override func(*config.Config)
}

// Sidecar is a running zerohop daemon.
type Sidecar struct {
	opts    Options
	log     *slog.Logger
	cache   *shm.Writer
	proxy   *proxy.Proxy
	reg     *prometheus.Registry
	conns   *connMetrics
	servers []*http.Server
	addrs   map[string]string
	admin   *http.Server
	adminLn net.Listener
	ready   atomic.Bool
	mu      sync.Mutex // serialises Reload and Shutdown
	cfg     *config.Config
	wg      sync.WaitGroup
	inval   *invalidation
	apps    *appcounters.Collector // the app processes' counters

	store     *store.Store // nil: memory only
	tier      *store.Tier  // the cache as the proxy uses it (writer + store)
	refilling atomic.Bool
	bgCancel  context.CancelFunc
}

// Start opens the cache, builds the proxy and starts serving cfg's
// listeners and admin endpoint. cfg must be valid.
func Start(cfg *config.Config, opts Options) (*Sidecar, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Sidecar{opts: opts, log: opts.Logger, cfg: cfg, addrs: map[string]string{}}
	for _, w := range cfg.Warnings() {
		s.log.Warn("configuration: " + w)
	}
	cc := cfg.Cache
	w, err := shm.OpenWriter(cc.Dir, &shm.Options{
		Size:              int64(cc.Size),
		RegionSize:        int64(cc.RegionSize),
		ExpectedEntries:   int64(cc.ExpectedEntries),
		MaxKeySize:        int(cc.MaxKeySize),
		MaxHeaderBytes:    int(cc.MaxHeaderBytes),
		HeartbeatInterval: cc.HeartbeatInterval,
		Logger:            opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("sidecar: cache: %w", err)
	}
	s.cache = w
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.registerFileSafety()
	s.registerAppCounters(cfg)
	st, err := s.openStore(cfg)
	if err != nil {
		w.Close()
		return nil, err
	}
	s.store = st
	s.tier = store.NewTier(w, st)
	if st != nil {
		s.reg.MustRegister(storeCollector{st})
	}
	po := proxy.Options{Cache: w, Tier: s.tier, Logger: opts.Logger, Registerer: s.reg}
	if opts.AccessLog != nil {
		po.AccessLog = slog.New(slog.NewJSONHandler(opts.AccessLog, nil))
	}
	// go-redis's own messages (one per failed dial while a global rate
	// limit's Redis is down) at debug level: the proxy counts and logs them.
	redis.SetLogger(redisLogger{s.log})
	p, err := proxy.New(cfg, po)
	if err != nil {
		s.closeCache()
		return nil, fmt.Errorf("sidecar: %w", err)
	}
	s.proxy = p
	if err := s.startInvalidation(cfg, st != nil); err != nil {
		p.Close()
		s.closeCache()
		return nil, err
	}
	s.conns = newConnMetrics(s.reg)
	// Admin first: its address is known to the proxy (refused to
	// forward-mode clients) before any listener accepts a request.
	if cfg.Admin.Address != "" {
		if err := s.startAdmin(cfg.Admin); err != nil {
			s.Shutdown(context.Background())
			return nil, err
		}
	}
	for _, l := range cfg.Listeners {
		if err := s.listen(l); err != nil {
			s.Shutdown(context.Background())
			return nil, err
		}
	}
	var bg context.Context
	bg, s.bgCancel = context.WithCancel(context.Background())
	s.startRefill(bg)
	s.startAppCounters(bg)
	s.ready.Store(true)
	s.log.Info("zerohop sidecar ready", "listeners", s.addrs, "admin", s.AdminAddr(), "cache", cc.Dir)
	return s, nil
}

func (s *Sidecar) listen(l config.Listener) error {
	if l.Mode == config.ModeTransparent && runtime.GOOS != "linux" {
		return fmt.Errorf("sidecar: listener %q: mode transparent needs Linux (SO_ORIGINAL_DST)", l.Name)
	}
	ln, err := net.Listen("tcp", l.Address)
	if err != nil {
		return fmt.Errorf("sidecar: listener %q: %w", l.Name, err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true) // h2c from the app
	tlsConfig, err := s.listenerTLS(l, &protos)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		TLSConfig:         tlsConfig,
		Handler:           s.proxy.Handler(l),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    int(l.MaxHeaderBytes),
		Protocols:         &protos,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.servers = append(s.servers, srv)
	s.addrs[l.Name] = ln.Addr().String()
	// The caps hold at accept, for every path a connection may take.
	ln = s.conns.limit(ln, l, s.log)
	s.proxy.AddLocalAddr(ln.Addr()) // forward-mode clients must not loop back into it
	if l.Mode == config.ModeTransparent {
		// Redirected connections: HTTP/1.x goes on to srv (and its fast
		// path), with its original destination in each request's context;
		// the rest is passed through or refused there.
		ln = s.proxy.TransparentListener(ln, l)
		srv.ConnContext = proxy.TransparentConnContext
	}
	if l.UsesFastPath() {
		ln = s.proxy.FastListener(ln, l, srv)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		serve := srv.Serve
		if tlsConfig != nil {
			serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("listener stopped", "listener", l.Name, "err", err)
		}
	}()
	return nil
}

// Addr returns the address a listener is bound to (useful with port 0).
func (s *Sidecar) Addr(listener string) string { return s.addrs[listener] }

// AdminAddr returns the admin endpoint's address, or "" when disabled.
func (s *Sidecar) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Cache returns the cache writer.
func (s *Sidecar) Cache() *shm.Writer { return s.cache }

// Proxy returns the proxy.
func (s *Sidecar) Proxy() *proxy.Proxy { return s.proxy }

// Reload applies a new configuration (after Options.Override). Changes to
// listeners, admin and the cache file's layout need a restart: they are
// kept as they are and reported.
func (s *Sidecar) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := cfg.Clone()
	if !reflect.DeepEqual(next.Listeners, s.cfg.Listeners) || next.Admin != s.cfg.Admin {
		s.log.Warn("config reload: listener and admin changes take effect after a restart")
		next.Listeners, next.Admin = s.cfg.Listeners, s.cfg.Admin
	}
	cur, nc := s.cfg.Cache, &next.Cache
	if nc.Dir != cur.Dir || nc.Size != cur.Size || nc.RegionSize != cur.RegionSize || nc.ExpectedEntries != cur.ExpectedEntries ||
		nc.MaxKeySize != cur.MaxKeySize || nc.MaxHeaderBytes != cur.MaxHeaderBytes || nc.HeartbeatInterval != cur.HeartbeatInterval {
		s.log.Warn("config reload: cache file layout changes take effect after a restart")
		nc.Dir, nc.Size, nc.RegionSize, nc.ExpectedEntries = cur.Dir, cur.Size, cur.RegionSize, cur.ExpectedEntries
		nc.MaxKeySize, nc.MaxHeaderBytes, nc.HeartbeatInterval = cur.MaxKeySize, cur.MaxHeaderBytes, cur.HeartbeatInterval
	}
	if err := s.proxy.Reload(next); err != nil {
		return err
	}
	s.cfg = next
	s.log.Info("configuration reloaded", "routes", len(next.Routes), "clusters", len(next.Clusters))
	return nil
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then marks the cache file cleanly closed so the next sidecar adopts it.
func (s *Sidecar) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready.Store(false)
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			srv.Close()
		}
	}
	if s.proxy != nil {
		// Requests the fast path was serving when their connections were
		// closed finish before the cache file goes away.
		if err := s.proxy.WaitFast(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.admin != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.admin.Shutdown(sctx)
		cancel()
	}
	if s.bgCancel != nil {
		s.bgCancel() // a refill still running stops
	}
	s.wg.Wait()
	if s.inval != nil {
		s.inval.stop()
	}
	if s.proxy != nil {
		s.proxy.Close()
	}
	if err := s.closeCache(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// closeCache closes the store (draining its queue) and then the cache
// file, cleanly, so the next sidecar adopts it.
func (s *Sidecar) closeCache() error {
	var errs []error
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
		s.store = nil
	}
	if s.cache != nil {
		if err := s.cache.Close(); err != nil {
			errs = append(errs, err)
		}
		s.cache = nil
	}
	return errors.Join(errs...)
}
