package proxy

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/zerohop/zerohop/internal/config"
)

// route is a compiled config.Route.
type route struct {
	name    string
	cluster *cluster
	cfg     config.Route

	host       string // lower-case exact host, or suffix ".example.com" for "*.example.com"
	wildcard   bool
	pathPrefix string
	pathExact  string
	methods    []string
	headers    [][2]string // canonical name, exact value

	cache       bool
	bypass      []string // canonical header names
	ttlOverride int64    // ms; 0 = none
}

func compileRoute(rc config.Route, clusters map[string]*cluster) *route {
	r := &route{name: rc.Name, cluster: clusters[rc.Cluster], cfg: rc, cache: true}
	h := strings.ToLower(rc.Match.Host)
	if strings.HasPrefix(h, "*.") {
		r.wildcard, r.host = true, h[1:]
	} else {
		r.host = h
	}
	r.pathPrefix, r.pathExact = rc.Match.PathPrefix, rc.Match.PathExact
	r.methods = rc.Match.Methods
	for k, v := range rc.Match.Headers {
		r.headers = append(r.headers, [2]string{http.CanonicalHeaderKey(k), v})
	}
	if rc.Cache != nil {
		r.cache = rc.Cache.Enabled
		for _, b := range rc.Cache.Bypass {
			r.bypass = append(r.bypass, http.CanonicalHeaderKey(b))
		}
		r.ttlOverride = rc.Cache.TTLOverride.Milliseconds()
	}
	return r
}

// matches reports whether req (with host already lower-cased, no port)
// satisfies every condition of the route.
func (r *route) matches(req *http.Request, host, path string) bool {
	return r.match(req.Method, requestFields(req.Header), host, path)
}

// matchesHead is matches for a request parsed by the fast path.
func (r *route) matchesHead(h *fastHead, host, path string) bool {
	return r.match(string(h.method), h, host, path)
}

// routeFields is a request's header, as the route conditions read it.
type routeFields interface {
	fieldIs(name, value string) bool
}

type requestFields http.Header

func (f requestFields) fieldIs(name, value string) bool { return http.Header(f).Get(name) == value }

func (r *route) match(method string, fields routeFields, host, path string) bool {
	if r.host != "" {
		if r.wildcard {
			if !strings.HasSuffix(host, r.host) || len(host) == len(r.host) {
				return false
			}
		} else if host != r.host {
			return false
		}
	}
	if r.pathExact != "" && path != r.pathExact {
		return false
	}
	if r.pathPrefix != "" && !strings.HasPrefix(path, r.pathPrefix) {
		return false
	}
	if len(r.methods) > 0 && !slices.Contains(r.methods, method) {
		return false
	}
	for _, h := range r.headers {
		if !fields.fieldIs(h[0], h[1]) {
			return false
		}
	}
	return true
}

// hostOnly lower-cases a Host value and strips its port.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}
