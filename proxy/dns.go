package proxy

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/zerohop/zerohop/config"
)

// dns_refresh: a cluster's endpoint names are resolved at start and every
// dns_refresh, and each address becomes an endpoint of its own. The
// addresses feed compile (expandDNS), so that a change of addresses is a
// rebuild of the cluster as a reload makes it: endpoints that stay keep
// their health and outlier state (by URL), new ones start fresh. A failed
// resolution keeps the last addresses.

// dnsLookupTimeout bounds one resolution of one name.
const dnsLookupTimeout = 5 * time.Second

// dnsClusters are the resolvers of the clusters with dns_refresh, by
// cluster name.
type dnsClusters struct {
	mu sync.Mutex
	m  map[string]*dnsCluster
}

// dnsCluster resolves one cluster's names.
type dnsCluster struct {
	p        *Proxy
	cfg      config.Cluster // as configured: a change starts over
	resolver *net.Resolver
	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	addrs    map[string][]netip.Addr // by name: the last good answer
}

// expandDNS returns cc with each endpoint named by a host name replaced by
// one endpoint per address the name resolved to (sorted; the name's
// weight each), and the Host header of each such endpoint, by URL. A name
// never resolved stays as it is (each connection resolves it). Without
// dns_refresh, cc is returned unchanged.
func (p *Proxy) expandDNS(cc config.Cluster) (config.Cluster, map[string]string) {
	if cc.DNSRefresh <= 0 {
		return cc, nil
	}
	d := p.dns.get(p, cc)
	d.mu.Lock()
	defer d.mu.Unlock()
	hostHeaders := map[string]string{}
	var eps []config.Endpoint
	seen := map[string]bool{}
	add := func(e config.Endpoint) {
		if !seen[e.URL] { // two names with one address: one endpoint
			seen[e.URL] = true
			eps = append(eps, e)
		}
	}
	for _, e := range cc.Endpoints {
		u, err := url.Parse(e.URL)
		name := ""
		if err == nil {
			name = u.Hostname()
		}
		addrs := d.addrs[name]
		if len(addrs) == 0 {
			add(e)
			continue
		}
		port := u.Port()
		if port == "" {
			port = "80"
			if u.Scheme == "https" {
				port = "443"
			}
		}
		if u.Scheme == "https" && (cc.TLS == nil || cc.TLS.ServerName == "") {
			// Certificates are checked against the name, not the
			// address dialled (validation allows one name per cluster).
			t := config.UpstreamTLS{}
			if cc.TLS != nil {
				t = *cc.TLS
			}
			t.ServerName = name
			cc.TLS = &t
		}
		for _, a := range addrs {
			au := *u
			au.Host = net.JoinHostPort(a.String(), port)
			s := au.String()
			hostHeaders[s] = u.Host
			add(config.Endpoint{URL: s, Weight: e.Weight})
		}
	}
	cc.Endpoints = eps
	return cc, hostHeaders
}

// setHostHeaders gives endpoints resolved from names their Host.
func (c *cluster) setHostHeaders(h map[string]string) {
	for i := range c.endpoints {
		c.endpoints[i].hostHeader = h[c.endpoints[i].key]
	}
}

// get returns the resolver of cc, made (and its names first resolved,
// synchronously) if new or if cc changed.
func (ds *dnsClusters) get(p *Proxy, cc config.Cluster) *dnsCluster {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if d, ok := ds.m[cc.Name]; ok && reflect.DeepEqual(d.cfg, cc) {
		return d
	} else if ok {
		d.cancel()
	}
	if ds.m == nil {
		ds.m = map[string]*dnsCluster{}
	}
	d := &dnsCluster{p: p, cfg: cc, resolver: net.DefaultResolver, addrs: map[string][]netip.Addr{}}
	if cc.DNSResolver != "" {
		server := cc.DNSResolver
		d.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, network, server)
		}}
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	ds.m[cc.Name] = d
	d.resolve()
	go d.run()
	return d
}

// prune stops the resolvers of clusters cfg does not have with the same
// settings (nil cfg: all). It does not wait: a resolver's goroutine may be
// waiting for reloadMu, which the caller holds.
func (ds *dnsClusters) prune(cfg *config.Config) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for name, d := range ds.m {
		keep := false
		if cfg != nil {
			for _, cc := range cfg.Clusters {
				keep = keep || (cc.Name == name && reflect.DeepEqual(d.cfg, cc))
			}
		}
		if !keep {
			d.cancel()
			delete(ds.m, name)
		}
	}
}

// run re-resolves every dns_refresh and, when an address came or went,
// rebuilds the proxy's state with the new addresses.
func (d *dnsCluster) run() {
	t := time.NewTicker(d.cfg.DNSRefresh)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		if d.resolve() {
			d.p.refreshDNS(d)
		}
	}
}

// resolve looks every name of the cluster up, keeping the last addresses
// of a name whose lookup fails, and reports whether any changed.
func (d *dnsCluster) resolve() bool {
	changed := false
	for _, e := range d.cfg.Endpoints {
		u, err := url.Parse(e.URL)
		if err != nil {
			continue
		}
		name := u.Hostname()
		if _, err := netip.ParseAddr(name); err == nil {
			continue // an address already
		}
		ctx, cancel := context.WithTimeout(d.ctx, min(dnsLookupTimeout, d.cfg.DNSRefresh))
		addrs, err := d.resolver.LookupNetIP(ctx, "ip", name)
		cancel()
		if d.ctx.Err() != nil {
			return false
		}
		if err == nil && len(addrs) == 0 {
			err = &net.DNSError{Err: "no addresses", Name: name, IsNotFound: true}
		}
		if err != nil {
			d.p.m.dnsFailures.WithLabelValues(d.cfg.Name).Inc()
			d.p.log.Warn("endpoint name not resolved; keeping its last addresses", "cluster", d.cfg.Name, "name", name, "err", err)
			continue
		}
		for i, a := range addrs {
			addrs[i] = a.Unmap()
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		addrs = slices.Compact(addrs)
		d.mu.Lock()
		if !slices.Equal(d.addrs[name], addrs) {
			d.addrs[name] = addrs
			changed = true
		}
		d.mu.Unlock()
	}
	return changed
}

// refreshDNS rebuilds the state in use with d's new addresses: the
// configuration stays; the clusters whose expansion changed are rebuilt.
func (p *Proxy) refreshDNS(d *dnsCluster) {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	if d.ctx.Err() != nil {
		return // replaced by a reload meanwhile
	}
	old := p.st.Load()
	st, err := p.compile(old.cfg, old)
	if err != nil {
		p.log.Error("rebuilding a cluster with new addresses failed; keeping the old ones", "cluster", d.cfg.Name, "err", err)
		return
	}
	p.swap(old, st)
	p.log.Info("endpoint addresses changed", "cluster", d.cfg.Name)
}
