package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks c as Load does. Use it after changing a loaded config in
// code, e.g. after the CLI applies environment overrides. Errors have the
// form "config: cache.size: ...", without file or line.
func (c *Config) Validate() error {
	v := &validator{}
	v.config(c)
	return v.errs.err()
}

type validator struct {
	file   string
	pos    map[string]position
	failed map[string]bool
	errs   ErrorList
}

func (v *validator) errorf(path, format string, args ...any) {
	if v.suppressed(path) {
		return
	}
	p := v.at(path)
	v.errs = append(v.errs, &FieldError{File: v.file, Line: p.line, Column: p.col, Field: path,
		Msg: fmt.Sprintf(format, args...)})
}

// at returns where path, or its nearest enclosing field, was set in the
// file; the zero position if it comes from the defaults.
func (v *validator) at(path string) position {
	for ; path != ""; path = parent(path) {
		if p, ok := v.pos[path]; ok {
			return p
		}
	}
	return position{}
}

// set reports whether path was written in the file.
func (v *validator) set(path string) bool { _, ok := v.pos[path]; return ok }

// suppressed reports whether path is inside a value the decoder already
// rejected; its value is a default, and complaining about it would only
// repeat the first error.
func (v *validator) suppressed(path string) bool {
	for ; path != ""; path = parent(path) {
		if v.failed[path] {
			return true
		}
	}
	return false
}

// failedUnder reports whether any field under prefix could not be decoded.
func (v *validator) failedUnder(prefix string) bool {
	for p := range v.failed {
		if p == prefix || strings.HasPrefix(p, prefix+".") || strings.HasPrefix(p, prefix+"[") {
			return true
		}
	}
	return false
}

func parent(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

// lineNote is " (first defined at line N)" for a duplicate, or "" if N is
// unknown.
func (v *validator) lineNote(path string) string {
	if p := v.at(path); p.line > 0 {
		return fmt.Sprintf(" (first defined at line %d)", p.line)
	}
	return ""
}

func (v *validator) config(c *Config) {
	if c.Version != CurrentVersion {
		v.errorf("version", "unsupported version %d; this zerohop reads version %d", c.Version, CurrentVersion)
	}
	v.listeners(c)
	v.admin(c)
	v.cache(&c.Cache)
	v.store(&c.Store)
	v.invalidation(c)
	clusters := v.clusters(c.Clusters)
	v.routes(c.Routes, clusters)
	v.splitCredentials(c)
	v.authUses(c)
	v.routeLimits(c.Routes)
	v.egress(c.Egress)
	v.limitRefs(c, v.limits(c.Limits))
	v.tracing(&c.Tracing)
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// name checks a required, unique name. seen maps names to the path of
// their first definition.
func (v *validator) name(path, kind, name string, seen map[string]string) {
	switch first, dup := seen[name]; {
	case name == "":
		v.errorf(path, "%s name is required", kind)
	case !nameRE.MatchString(name):
		v.errorf(path, "invalid name %q: use letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters", clip(name))
	case dup:
		v.errorf(path, "duplicate %s name %q%s", kind, name, v.lineNote(first))
	default:
		seen[name] = path
	}
}

// clip shortens s for quoting in a message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

func (v *validator) nonNegative(path string, d time.Duration) {
	if d < 0 {
		v.errorf(path, "must not be negative, got %v", d)
	}
}

func (v *validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.errorf(path, "must be greater than 0, got %v", d)
	}
}

func (v *validator) listeners(c *Config) {
	if len(c.Listeners) == 0 {
		v.errorf("listeners", "at least one listener is required")
	}
	names := map[string]string{}
	addrs := map[string]string{}
	for i, l := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		v.name(p+".name", "listener", l.Name, names)
		if err := checkAddress(l.Address); err != nil {
			v.errorf(p+".address", "%v", err)
		} else if !strings.HasSuffix(l.Address, ":0") {
			if first, dup := addrs[l.Address]; dup {
				v.errorf(p+".address", "address %q is already used by another listener%s", l.Address, v.lineNote(first))
			}
			addrs[l.Address] = p + ".address"
			if l.Address == c.Admin.Address {
				v.errorf(p+".address", "address %q is also the admin address", l.Address)
			}
		}
		switch l.Mode {
		case ModeForward, ModeTransparent:
		case ModeReverse:
			if len(c.Routes) == 0 {
				v.errorf(p+".mode", "reverse mode needs at least one route, but no routes are configured")
			}
		default:
			v.errorf(p+".mode", "invalid mode %q: must be %q, %q or %q", l.Mode, ModeForward, ModeReverse, ModeTransparent)
		}
		v.nonNegative(p+".read_header_timeout", l.ReadHeaderTimeout)
		v.nonNegative(p+".idle_timeout", l.IdleTimeout)
		if l.MaxHeaderBytes <= 0 {
			v.errorf(p+".max_header_bytes", "must be greater than 0")
		}
		if l.MaxRequestBody < 0 {
			v.errorf(p+".max_request_body", "must not be negative (0 means unlimited)")
		}
		if l.MaxConnections < 0 {
			v.errorf(p+".max_connections", "must not be negative (0 means no cap), got %d", l.MaxConnections)
		}
		if l.MaxConnectionsPerClient < 0 {
			v.errorf(p+".max_connections_per_client", "must not be negative (0 means no cap), got %d", l.MaxConnectionsPerClient)
		}
		v.forward(p, &c.Listeners[i])
		v.listenerTLS(p, &c.Listeners[i])
	}
}

func (v *validator) admin(c *Config) {
	a := c.Admin
	if a.Address != "" {
		if err := checkAddress(a.Address); err != nil {
			v.errorf("admin.address", "%v", err)
		} else if !a.AllowRemote && !isLoopback(a.Address[:strings.LastIndex(a.Address, ":")]) {
			v.errorf("admin.address", "%q is not a loopback address; admin endpoints would be reachable from outside the pod (use 127.0.0.1, or set admin.allow_remote: true)", a.Address)
		}
	}
	if a.Token != "" {
		// Never echo the token: error messages end up in logs.
		if strings.IndexFunc(a.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			v.errorf("admin.token", "contains whitespace or control characters (a trailing newline?)")
		} else if len(a.Token) < 16 {
			v.errorf("admin.token", "too short (%d characters); use at least 16 random characters", len(a.Token))
		}
	}
}

func (v *validator) cache(c *Cache) {
	if c.Dir == "" {
		v.errorf("cache.dir", "must not be empty")
	}
	// The relations between sizes are checked only if every size is
	// usable; otherwise they would repeat an error, or compare a default
	// the user did not mean.
	related := true
	for _, s := range []struct {
		path string
		size Size
	}{{"cache.size", c.Size}, {"cache.region_size", c.RegionSize}, {"cache.max_object_size", c.MaxObjectSize},
		{"cache.max_key_size", c.MaxKeySize}, {"cache.max_header_bytes", c.MaxHeaderBytes}} {
		if s.size <= 0 {
			v.errorf(s.path, "must be greater than 0")
		}
		related = related && s.size > 0 && !v.failed[s.path]
	}
	if related && c.RegionSize > c.Size/5 {
		v.errorf(v.first("cache.region_size", "cache.size"),
			"region_size %v is too large for size %v: the cache needs at least 4 regions plus its index (region_size ≤ size/5 = %v)",
			c.RegionSize, c.Size, c.Size/5)
	}
	// Sum in float64: the fields are each < 2^63 but their sum may not be.
	if need := float64(c.MaxObjectSize) + float64(c.MaxKeySize) + float64(c.MaxHeaderBytes) + float64(RegionOverhead); related && need > float64(c.RegionSize) {
		v.errorf(v.first("cache.max_object_size", "cache.region_size", "cache.max_header_bytes", "cache.max_key_size"),
			"the largest entry does not fit in a region: max_object_size %v + max_key_size %v + max_header_bytes %v + %v overhead > region_size %v",
			c.MaxObjectSize, c.MaxKeySize, c.MaxHeaderBytes, RegionOverhead, c.RegionSize)
	}
	if c.ExpectedEntries < 0 {
		v.errorf("cache.expected_entries", "must not be negative (0 means derived from size)")
	}
	v.positive("cache.heartbeat_interval", c.HeartbeatInterval)
	v.nonNegative("cache.default_ttl", c.DefaultTTL)
	v.headerNames("cache.targeted_fields", c.TargetedFields)
	v.nonNegative("cache.heuristic_max", c.HeuristicMax)
	v.nonNegative("cache.stale_if_error", c.StaleIfError)
	v.nonNegative("cache.coalesce_timeout", c.CoalesceTimeout)
}

// first returns the first of paths that the file set, else paths[0]: a
// cross-field error belongs on the line the user wrote.
func (v *validator) first(paths ...string) string {
	for _, p := range paths {
		if v.set(p) {
			return p
		}
	}
	return paths[0]
}

func (v *validator) store(s *Store) {
	if s.MaxDisk < 0 {
		v.errorf("store.max_disk", "must not be negative (0 means no cap)")
	}
	if s.Queue <= 0 {
		v.errorf("store.queue", "must be greater than 0, got %d", s.Queue)
	}
	if s.ReadyAfterRefill < 0 || s.ReadyAfterRefill > 1 {
		v.errorf("store.ready_after_refill", "must be between 0 and 1, got %v", s.ReadyAfterRefill)
	}
}

func (v *validator) invalidation(c *Config) {
	if c.Invalidation.Log == "" && c.Cache.Dir != "" {
		v.errorf("invalidation.log", "must not be empty")
	}
	r := c.Invalidation.Redis
	if r == nil {
		return
	}
	if r.Address == "" {
		v.errorf("invalidation.redis.address", "required when invalidation.redis is set")
	} else if err := checkAddress(r.Address); err != nil {
		v.errorf("invalidation.redis.address", "%v", err)
	}
	if r.Stream == "" {
		v.errorf("invalidation.redis.stream", "must not be empty")
	}
	if r.DB < 0 {
		v.errorf("invalidation.redis.db", "must not be negative, got %d", r.DB)
	}
	v.nonNegative("invalidation.redis.dial_timeout", r.DialTimeout)
}

// clusters validates the clusters and returns their names.
func (v *validator) clusters(cs []Cluster) map[string]string {
	names := map[string]string{}
	for i, c := range cs {
		p := fmt.Sprintf("clusters[%d]", i)
		v.name(p+".name", "cluster", c.Name, names)
		if len(c.Endpoints) == 0 {
			v.errorf(p+".endpoints", "a cluster needs at least one endpoint")
		}
		urls := map[string]string{}
		total := 0
		for j, e := range c.Endpoints {
			ep := fmt.Sprintf("%s.endpoints[%d]", p, j)
			if err := checkEndpointURL(e.URL); err != nil {
				v.errorf(ep+".url", "%v", err)
			} else if first, dup := urls[e.URL]; dup {
				v.errorf(ep+".url", "duplicate endpoint %q%s; use weight to send it more traffic", e.URL, v.lineNote(first))
			} else {
				urls[e.URL] = ep + ".url"
			}
			if e.Weight < 0 || e.Weight > MaxWeight {
				v.errorf(ep+".weight", "must be between 0 and %d, got %d", MaxWeight, e.Weight)
				total = -1 // already reported
			} else if total >= 0 {
				total += e.Weight
			}
		}
		if len(c.Endpoints) > 0 && total == 0 && !v.failedUnder(p+".endpoints") {
			v.errorf(p+".endpoints", "every endpoint has weight 0; at least one must have a positive weight")
		}
		v.nonNegative(p+".connect_timeout", c.ConnectTimeout)
		v.nonNegative(p+".response_timeout", c.ResponseTimeout)
		v.nonNegative(p+".body_idle_timeout", c.BodyIdleTimeout)
		if c.MaxIdleConns < 0 {
			v.errorf(p+".max_idle_conns", "must not be negative, got %d", c.MaxIdleConns)
		}
		switch c.Client {
		case "", ClientH1, ClientStd, ClientH2C:
		default:
			v.errorf(p+".client", "invalid client %q: must be %q, %q or %q", c.Client, ClientH1, ClientStd, ClientH2C)
		}
		v.upstreamTLS(p, &cs[i])
		v.balancing(p, &cs[i])
		v.credentials(p+".credentials", cs[i].Credentials)
		v.circuitBreakers(p, &cs[i])
	}
	return names
}

func (v *validator) routes(rs []Route, clusters map[string]string) {
	names := map[string]string{}
	for i, r := range rs {
		p := fmt.Sprintf("routes[%d]", i)
		v.name(p+".name", "route", r.Name, names)
		v.match(p+".match", &r.Match)
		v.routeAction(p, &rs[i], clusters)
		if rc := r.Cache; rc != nil {
			v.nonNegative(p+".cache.ttl_override", rc.TTLOverride)
			v.headerNames(p+".cache.bypass", rc.Bypass)
			v.nonNegative(p+".cache.default_ttl", rc.DefaultTTL)
			v.cacheKey(p+".cache.key", rc.Key)
		}
		v.nonNegative(p+".timeout", r.Timeout)
		v.responseHeaders(p+".response_headers", r.ResponseHeaders)
		v.routeTraffic(p, &r, clusters)
	}
}

// ownedResponseFields are the response fields a route may not set: the
// framing's, the hop's, and the ones the proxy itself writes.
var ownedResponseFields = []string{"age", "cache-status", "connection", "content-length", "keep-alive",
	"proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "x-request-id"}

func (v *validator) responseHeaders(p string, m map[string]string) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	v.headerNames(p, names)
	for _, k := range names {
		switch val := m[k]; {
		case slices.Contains(ownedResponseFields, strings.ToLower(k)):
			v.errorf(p+"."+k, "%q is set by the proxy or the framing, not by a route", k)
		case !validFieldValue(val):
			v.errorf(p+"."+k, "invalid header value %q: no control characters, no leading or trailing space", val)
		}
	}
}

// validFieldValue reports whether s is a field value (RFC 9110 §5.5)
// without leading or trailing whitespace: visible characters, spaces and
// tabs, and obs-text.
func validFieldValue(s string) bool {
	if s != strings.TrimSpace(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// suggestName helps with a reference to a name that does not exist.
func suggestName(name string, defined map[string]string) string {
	if len(defined) == 0 {
		return "; no clusters are defined"
	}
	keys := make([]string, 0, len(defined))
	for k := range defined {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if editDistance(name, k) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	if len(keys) > 10 {
		keys = append(keys[:10], "...")
	}
	return "; defined clusters: " + strings.Join(keys, ", ")
}

func (v *validator) match(p string, m *Match) {
	if err := checkRouteHost(m.Host); err != nil {
		v.errorf(p+".host", "%v", err)
	}
	v.pathMatch(p, m)
	for _, f := range []struct{ name, val string }{{"path_prefix", m.PathPrefix}, {"path_exact", m.PathExact}} {
		switch {
		case f.val == "":
		case !strings.HasPrefix(f.val, "/"):
			v.errorf(p+"."+f.name, "must start with \"/\", got %q", f.val)
		case strings.ContainsAny(f.val, "?#"):
			v.errorf(p+"."+f.name, "must be a path without query or fragment, got %q", f.val)
		}
	}
	seen := map[string]bool{}
	for i, meth := range m.Methods {
		mp := fmt.Sprintf("%s.methods[%d]", p, i)
		switch {
		case !isToken(meth):
			v.errorf(mp, "invalid method %q", meth)
		case strings.ToUpper(meth) != meth:
			v.errorf(mp, "method %q is not upper case; methods are case-sensitive (did you mean %q?)", meth, strings.ToUpper(meth))
		case seen[meth]:
			v.errorf(mp, "duplicate method %q", meth)
		}
		seen[meth] = true
	}
	names := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	v.headerNames(p+".headers", names)
	v.fieldMatches(p+".header_rules", "header field", m.HeaderRules)
	v.fieldMatches(p+".query", "query parameter", m.Query)
}

// headerNames checks names are valid and distinct ignoring case.
func (v *validator) headerNames(p string, names []string) {
	seen := map[string]bool{}
	for _, h := range names {
		switch {
		case !isToken(h):
			v.errorf(p, "invalid header name %q", h)
		case seen[strings.ToLower(h)]:
			v.errorf(p, "header %q is listed twice (header names ignore case)", h)
		}
		seen[strings.ToLower(h)] = true
	}
}

// checkAddress checks a listen or dial address of the form host:port.
// An empty host means all interfaces; port 0 means any free port.
func checkAddress(addr string) error {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return fmt.Errorf("invalid address %q: want host:port, e.g. \"127.0.0.1:8089\"", addr)
	}
	host, port := addr[:i], addr[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return fmt.Errorf("invalid address %q: %q is not an IPv6 address", addr, host)
		}
	} else if strings.Contains(host, ":") {
		return fmt.Errorf("invalid address %q: put IPv6 addresses in brackets, e.g. \"[::1]:8089\"", addr)
	} else if host != "" && !isHostname(host) {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("invalid address %q: bad host %q", addr, host)
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.FormatUint(n, 10) {
		return fmt.Errorf("invalid address %q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

// isLoopback reports whether host (possibly in brackets) is localhost or a
// loopback IP. An empty host means all interfaces and is not loopback.
func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// isHostname reports whether h is a DNS name (RFC 1123, underscores
// tolerated for SRV-style names). IP addresses do not pass: a name whose
// last label is numeric is not a DNS name.
func isHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return false
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

func checkEndpointURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("required, e.g. \"http://10.0.0.7:8080\"")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" {
		return fmt.Errorf("invalid URL %q: must be an absolute http:// or https:// URL, e.g. \"http://10.0.0.7:8080\"", raw)
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("URL %q has no host", raw)
	case u.User != nil:
		return fmt.Errorf("URL %q must not contain credentials", u.Redacted())
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("URL %q must not have a path: endpoints name a server, routes choose paths", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Errorf("URL %q must not have a query or fragment", raw)
	}
	if h := u.Hostname(); !isHostname(h) {
		if _, err := netip.ParseAddr(h); err != nil {
			return fmt.Errorf("URL %q has an invalid host %q", raw, h)
		}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("URL %q has an invalid port %q", raw, p)
		}
	}
	return nil
}

func checkRouteHost(h string) error {
	if h == "" {
		return nil
	}
	name := strings.TrimPrefix(h, "*.")
	switch {
	case h == "*":
		return fmt.Errorf("invalid host %q: leave host empty to match any host", h)
	case strings.Contains(name, "*"):
		return fmt.Errorf("invalid host %q: a wildcard is only allowed as a leading \"*.\"", h)
	case strings.Contains(h, ":"):
		return fmt.Errorf("invalid host %q: must not include a port", h)
	case !isHostname(name):
		if _, err := netip.ParseAddr(h); err != nil || strings.Contains(h, ":") {
			return fmt.Errorf("invalid host %q", h)
		}
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), the
// syntax of methods and header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
