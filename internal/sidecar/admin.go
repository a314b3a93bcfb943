package sidecar

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/zerohop/zerohop/config"
)

// startAdmin serves the operator endpoints. The configuration refuses a
// non-loopback address unless allow_remote is set, so by default nothing
// here is reachable from the pod network.
func (s *Sidecar) startAdmin(a config.Admin) error {
	ln, err := net.Listen("tcp", a.Address)
	if err != nil {
		return fmt.Errorf("sidecar: admin: %w", err)
	}
	s.adminLn = ln
	s.proxy.AddLocalAddr(ln.Addr()) // forward-mode clients must not reach it
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if ok, why := s.cacheReady(); !ok {
			http.Error(w, "cache file damaged, rebuilding: "+why, http.StatusServiceUnavailable)
			return
		}
		if !s.refillReady() {
			http.Error(w, "warming: refilling the cache from the store", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /purge", s.handlePurge)
	if os.Getenv("ZEROHOP_PPROF") == "1" {
		// Profiling for operators chasing a problem; off by default.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /stats", s.handleStats)
	mux.HandleFunc("GET /requests", s.handleRequests)
	mux.HandleFunc("GET /cache/inspect", s.handleCacheInspect)
	mux.HandleFunc("GET /cache/keys", s.handleCacheKeys)
	var h http.Handler = mux
	if a.Token != "" {
		h = requireToken(a.Token, mux)
	}
	s.admin = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.admin.Serve(ln)
	}()
	return nil
}

// requireToken guards everything but the probes with a bearer token.
func requireToken(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="zerohop admin"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Watch reloads the configuration file at path on change until ctx ends.
// A bad file is logged and the running configuration kept.
func (s *Sidecar) Watch(ctx context.Context, path string, current *config.Config) error {
	w := &config.Watcher{
		Path:    path,
		Current: current,
		OnChange: func(c *config.Config) {
			if s.opts.Override != nil {
				s.opts.Override(c)
				if err := c.Validate(); err != nil {
					s.log.Error("config reload rejected; keeping the running configuration", "err", err)
					return
				}
			}
			if err := s.Reload(c); err != nil {
				s.log.Error("config reload failed; keeping the running configuration", "err", err)
			}
		},
		OnError: func(err error) {
			s.log.Error("config reload rejected; keeping the running configuration", "err", err)
		},
	}
	return w.Run(ctx)
}
