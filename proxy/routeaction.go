package proxy

import (
	"net/http"
	"net/http/httputil"
	"regexp"
	"slices"
	"strings"

	"github.com/zerohop/zerohop/config"
)

// What a route does besides choosing a cluster: header operations on the
// upstream request and on responses, answering by itself (a fixed
// response, a redirect), and rewriting the path and Host sent upstream.
// The first three are filters of the route's chain (filter.go), so both
// entry paths run them; the rewrite is part of building the upstream
// request (rewrite, upstream.go), after the cache decision: the cache key
// is the request as received.

// appendRouteFilters adds the filters of rc's route actions to fs:
// request_header_ops and response_header_ops, then a direct response or
// redirect, last in the request phase.
func appendRouteFilters(fs chain, rc config.Route) chain {
	if rc.RequestHeaderOps != nil || rc.ResponseHeaderOps != nil {
		fs = append(fs, &headerOpsFilter{req: compileOps(rc.RequestHeaderOps), resp: compileOps(rc.ResponseHeaderOps)})
	}
	if d := rc.DirectResponse; d != nil {
		f := &directFilter{ans: answer{Status: d.Status, Body: d.Body}}
		if d.Body != "" {
			ct := d.ContentType
			if ct == "" {
				ct = "text/plain; charset=utf-8"
			}
			f.ans.Fields = [][2]string{{"Content-Type", ct}}
		}
		fs = append(fs, f)
	}
	if rd := rc.Redirect; rd != nil {
		f := &redirectFilter{cfg: *rd, matched: rc.Match.PathPrefix}
		if rc.Match.PathExact != "" {
			f.matched = rc.Match.PathExact
		}
		fs = append(fs, f)
	}
	return fs
}

// headerOps is a compiled config.HeaderOps: canonical names, sorted so
// both paths apply them alike.
type headerOps struct {
	remove   []string
	set, add [][2]string
}

func compileOps(o *config.HeaderOps) headerOps {
	var h headerOps
	if o == nil {
		return h
	}
	for _, n := range o.Remove {
		h.remove = append(h.remove, http.CanonicalHeaderKey(n))
	}
	pairs := func(m map[string]string) [][2]string {
		var kv [][2]string
		for k, v := range m {
			kv = append(kv, [2]string{http.CanonicalHeaderKey(k), v})
		}
		slices.SortFunc(kv, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		return kv
	}
	h.set, h.add = pairs(o.Set), pairs(o.Add)
	return h
}

func (o *headerOps) apply(f fields) {
	for _, n := range o.remove {
		f.Del(n)
	}
	for _, kv := range o.set {
		f.Set(kv[0], kv[1])
	}
	for _, kv := range o.add {
		f.Add(kv[0], kv[1])
	}
}

// headerOpsFilter is request_header_ops (on the request sent upstream:
// misses, revalidations and refreshes; never the cache key) and
// response_header_ops (on every response of the route).
type headerOpsFilter struct {
	passFilter
	req, resp headerOps
}

func (*headerOpsFilter) Name() string                            { return "header_ops" }
func (f *headerOpsFilter) OnUpstream(_ request, h fields)        { f.req.apply(h) }
func (f *headerOpsFilter) OnResponse(_ request, _ int, h fields) { f.resp.apply(h) }

// directFilter answers every request of its route with a fixed response.
type directFilter struct {
	passFilter
	ans answer
}

func (*directFilter) Name() string { return "direct_response" }

func (f *directFilter) OnRequest(_ request, a *answer) verdict {
	*a = f.ans
	return filterAnswered
}

// redirectFilter answers every request of its route with a redirect to
// the request's URL with the configured parts replaced.
type redirectFilter struct {
	passFilter
	cfg     config.Redirect
	matched string // the match's path_prefix or path_exact, for path_prefix
}

func (*redirectFilter) Name() string { return "redirect" }

func (f *redirectFilter) OnRequest(r request, a *answer) verdict {
	*a = answer{Status: f.cfg.Status, Fields: [][2]string{{"Location", f.location(r)}}}
	return filterAnswered
}

// location builds the redirect's target from the request's, as received
// (the path still percent-encoded).
func (f *redirectFilter) location(r request) string {
	rd := &f.cfg
	path, query, hasQuery := strings.Cut(r.Target(), "?")
	if i := strings.Index(path, "://"); i >= 0 { // an absolute-form target (forward mode)
		if j := strings.IndexByte(path[i+3:], '/'); j >= 0 {
			path = path[i+3+j:]
		} else {
			path = "/"
		}
	}
	switch {
	case rd.Path != "":
		path = rd.Path
	case rd.PathPrefix != "" && strings.HasPrefix(path, f.matched):
		path = rd.PathPrefix + path[len(f.matched):]
	}
	scheme, host := rd.Scheme, rd.Host
	if scheme == "" {
		scheme = "http"
	}
	if host == "" {
		host = r.Host()
	}
	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(host) + len(path) + 1 + len(query))
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	b.WriteString(path)
	if hasQuery && !rd.StripQuery {
		b.WriteByte('?')
		b.WriteString(query)
	}
	return b.String()
}

// pathRewrite is a compiled config.Rewrite.
type pathRewrite struct {
	prefix, matched string // replace matched (the match's prefix or exact path) with prefix
	re              *regexp.Regexp
	sub             string
	host            string
	keepHost        bool
}

func compileRewrite(rc config.Route) *pathRewrite {
	rw := rc.Rewrite
	if rw == nil {
		return nil
	}
	p := &pathRewrite{prefix: rw.PathPrefix, sub: rw.PathSubstitution, host: rw.Host, keepHost: rw.KeepHost}
	p.matched = rc.Match.PathPrefix
	if rc.Match.PathExact != "" {
		p.matched = rc.Match.PathExact
	}
	if rw.PathRegex != "" {
		p.re = regexp.MustCompile(rw.PathRegex) // validated
	}
	return p
}

// apply rewrites the upstream request pr.Out, which SetURL has pointed at
// the endpoint: the path (on its decoded form, keeping an escaped form
// when the request had one that still applies) and the Host.
func (rw *pathRewrite) apply(pr *httputil.ProxyRequest) {
	u := pr.Out.URL
	in := pr.In.URL.Path
	var out string
	switch {
	case rw.re != nil:
		out = rw.re.ReplaceAllString(in, rw.sub)
	case rw.prefix != "" && strings.HasPrefix(in, rw.matched):
		out = rw.prefix + in[len(rw.matched):]
	default:
		out = in
	}
	if out != in {
		if out == "" || out[0] != '/' {
			out = "/" + out
		}
		// The endpoint has no path (config): the rewritten path is the path.
		u.Path, u.RawPath = out, ""
	}
	switch {
	case rw.keepHost:
		pr.Out.Host = pr.In.Host
	case rw.host != "":
		pr.Out.Host = rw.host
	}
}
