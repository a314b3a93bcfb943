package config

import (
	"path/filepath"
	"strings"
	"time"
)

// Default values that appear in more than one place.
const (
	DefaultListenerAddress = "127.0.0.1:8089"
	DefaultAdminAddress    = "127.0.0.1:9901"
	DefaultCacheDir        = "/var/run/zerohop"
	DefaultRedisStream     = "zerohop:invalidations"
	// DefaultBodyIdleTimeout is a cluster's body_idle_timeout, and the one
	// forward-mode egress uses: nginx's proxy_read_timeout default.
	DefaultBodyIdleTimeout = 60 * time.Second
	DefaultMaxConnections  = 4096 // per listener; see Listener.MaxConnections
	defaultListenerName    = "forward"
	// DefaultTunnelIdleTimeout is listeners[].forward.tunnel_idle_timeout.
	DefaultTunnelIdleTimeout = time.Hour
	invalidationLogName      = "inval/inval.log" // a subdirectory the app mounts read-write
)

// Default returns the built-in configuration used when zerohop runs
// without a file: one forward proxy on 127.0.0.1:8089, admin on
// 127.0.0.1:9901, a 64MiB cache in /var/run/zerohop. Each call returns a
// fresh value the caller may modify.
func Default() *Config {
	c := base()
	c.derive()
	return c
}

// base is Default without derived fields, so that a file which moves
// cache.dir also moves the invalidation log.
func base() *Config {
	l := Listener{Name: defaultListenerName}
	l.setDefaults()
	return &Config{
		Version:   CurrentVersion,
		Listeners: []Listener{l},
		Admin:     Admin{Address: DefaultAdminAddress},
		Cache: Cache{
			Dir:               DefaultCacheDir,
			Size:              64 * MiB,
			RegionSize:        4 * MiB,
			MaxObjectSize:     1 * MiB,
			MaxKeySize:        8 * KiB,
			MaxHeaderBytes:    64 * KiB,
			HeartbeatInterval: 250 * time.Millisecond,
			HeuristicMax:      24 * time.Hour,
			CoalesceTimeout:   5 * time.Second,
			TargetedFields:    []string{"Zerohop-Cache-Control", "CDN-Cache-Control"},
		},
		Store: Store{
			MaxDisk:           1 * GiB,
			Queue:             1024,
			MemoryOnlyOnError: true,
		},
	}
}

// derive fills fields whose defaults depend on other fields.
func (c *Config) derive() {
	if c.Invalidation.Log == "" && c.Cache.Dir != "" {
		c.Invalidation.Log = filepath.Join(c.Cache.Dir, invalidationLogName)
	}
}

// defaulter is implemented by list elements and optional sections, whose
// defaults the decoder applies before reading the element from YAML, so
// that an explicit zero ("weight: 0", "enabled: false") stays zero.
type defaulter interface{ setDefaults() }

func (l *Listener) setDefaults() {
	l.Address = DefaultListenerAddress
	l.Mode = ModeForward
	l.ReadHeaderTimeout = 10 * time.Second
	l.IdleTimeout = 90 * time.Second
	l.MaxHeaderBytes = 1 * MiB
	l.FastPath = true
	l.MaxConnections = DefaultMaxConnections
	l.Forward.TunnelIdleTimeout = DefaultTunnelIdleTimeout
	l.Transparent = Transparent{SniffTimeout: DefaultSniffTimeout, Passthrough: true}
}

func (r *RedisStream) setDefaults() {
	r.Stream = DefaultRedisStream
	r.DialTimeout = 5 * time.Second
}

func (c *Cluster) setDefaults() {
	c.ConnectTimeout = 5 * time.Second
	c.ResponseTimeout = 30 * time.Second
	c.BodyIdleTimeout = DefaultBodyIdleTimeout
	c.MaxIdleConns = 64
	c.PanicThreshold = DefaultPanicThreshold
}

func (e *Endpoint) setDefaults()   { e.Weight = 1 }
func (r *RouteCache) setDefaults() { r.Enabled = true }

// EffectiveClient returns Client, or if Client is "" the default: h1 when
// every endpoint is plain http and no TLS is configured, std otherwise
// (net/http may negotiate HTTP/2 with https endpoints).
func (c *Cluster) EffectiveClient() ClusterClient {
	if c.Client != "" {
		return c.Client
	}
	if c.TLS != nil {
		return ClientStd
	}
	for _, e := range c.Endpoints {
		if !strings.HasPrefix(strings.ToLower(e.URL), "http://") {
			return ClientStd
		}
	}
	return ClientH1
}
