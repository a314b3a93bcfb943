package config

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// FieldMatch is one condition on a request header field (match.header_rules)
// or query parameter (match.query). Exactly one of Present, Exact, Prefix
// and Regex is set.
type FieldMatch struct {
	// Name of the header field (case-insensitive) or query parameter
	// (case-sensitive, compared after percent-decoding). Required.
	Name string `yaml:"name"`
	// Present, when true, requires a non-empty value (a header field) or
	// the parameter at all (a query parameter, "?debug" included).
	// Default false.
	Present bool `yaml:"present"`
	// Exact requires the value to equal it. Default "" (unset).
	Exact string `yaml:"exact"`
	// Prefix requires the value to start with it. Default "" (unset).
	Prefix string `yaml:"prefix"`
	// Regex requires the whole value to match it (RE2 syntax, as Go's
	// regexp; anchored at both ends). Default "" (unset).
	Regex string `yaml:"regex"`
	// Invert negates the condition: "present: true, invert: true" requires
	// the field to be absent. Default false.
	Invert bool `yaml:"invert"`
}

// For a header field or query parameter with several values, the first
// one is tested.

// Rewrite changes the request sent upstream; the cache key and the route
// match use the request as received. Default nil = none.
type Rewrite struct {
	// PathPrefix replaces the part of the path that match.path_prefix
	// matched (the whole path for match.path_exact). Default "" = none.
	PathPrefix string `yaml:"path_prefix"`
	// PathRegex and PathSubstitution rewrite the path with RE2 regular
	// expression substitution (Go's regexp.ReplaceAllString: "$1" and
	// "${name}" name groups), on every match in the path. Default "" =
	// none. Excludes PathPrefix.
	PathRegex        string `yaml:"path_regex"`
	PathSubstitution string `yaml:"path_substitution"`
	// Host replaces the Host sent upstream. Default "" = the endpoint's
	// host:port, unless KeepHost.
	Host string `yaml:"host"`
	// KeepHost sends the Host the app sent instead of the endpoint's.
	// Default false. Excludes Host.
	KeepHost bool `yaml:"keep_host"`
}

// HeaderOps add, set and remove header fields: routes[].request_header_ops
// on the request sent upstream (after the cache decision, so they never
// change the cache key), routes[].response_header_ops on every response of
// the route (hits, misses and the proxy's own answers). Remove runs first,
// then Set (replacing any field of the name), then Add (appending a value).
type HeaderOps struct {
	// Add appends a value to the field. Default empty.
	Add map[string]string `yaml:"add"`
	// Set replaces the field's values. Default empty.
	Set map[string]string `yaml:"set"`
	// Remove deletes the fields named. Default empty.
	Remove []string `yaml:"remove"`
}

// DirectResponse answers a route's requests itself, without an upstream.
type DirectResponse struct {
	// Status of the answer, 200 to 599. Default 200.
	Status int `yaml:"status"`
	// Body of the answer. Default "".
	Body string `yaml:"body"`
	// ContentType of a non-empty body. Default "text/plain; charset=utf-8".
	ContentType string `yaml:"content_type"`
}

// Redirect answers a route's requests with a redirect, without an
// upstream. Its Location is the request's URL with the parts set here
// replaced; at least one must be set.
type Redirect struct {
	// Status is 301, 302, 303, 307 or 308. Default 302.
	Status int `yaml:"status"`
	// Scheme replaces the scheme ("http" or "https"). Default "" = the
	// request's (http: the sidecar serves no TLS).
	Scheme string `yaml:"scheme"`
	// Host replaces the authority (host, or host:port). Default "" = the
	// request's Host.
	Host string `yaml:"host"`
	// Path replaces the whole path. Default "". Excludes PathPrefix.
	Path string `yaml:"path"`
	// PathPrefix replaces the part of the path that match.path_prefix
	// matched (the whole path for match.path_exact). Default "".
	PathPrefix string `yaml:"path_prefix"`
	// StripQuery drops the request's query. Default false: kept.
	StripQuery bool `yaml:"strip_query"`
}

// compileRE compiles a route regular expression anchored at both ends, the
// way the proxy does.
func compileRE(re string) (*regexp.Regexp, error) { return regexp.Compile(`^(?:` + re + `)$`) }

// CompileMatchRegex compiles a path_regex, header or query regex as the
// proxy uses it: RE2 syntax, matching the whole value.
func CompileMatchRegex(re string) (*regexp.Regexp, error) { return compileRE(re) }

func (v *validator) pathMatch(p string, m *Match) {
	set := 0
	for _, s := range []string{m.PathExact, m.PathPrefix, m.PathRegex} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		v.errorf(v.first(p+".path_regex", p+".path_exact", p+".path_prefix"), "set one of path_exact, path_prefix and path_regex, not several")
	}
	if m.PathRegex != "" {
		if _, err := compileRE(m.PathRegex); err != nil {
			v.errorf(p+".path_regex", "invalid regular expression: %v", err)
		}
	}
}

func (v *validator) fieldMatches(p, kind string, ms []FieldMatch) {
	for i, m := range ms {
		mp := fmt.Sprintf("%s[%d]", p, i)
		switch {
		case m.Name == "":
			v.errorf(mp+".name", "required: name the %s to test", kind)
		case kind == "header field" && !isToken(m.Name):
			v.errorf(mp+".name", "invalid header name %q", m.Name)
		}
		n := 0
		for _, set := range []bool{m.Present, m.Exact != "", m.Prefix != "", m.Regex != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			v.errorf(mp, "set exactly one of present, exact, prefix and regex")
		}
		if m.Regex != "" {
			if _, err := compileRE(m.Regex); err != nil {
				v.errorf(mp+".regex", "invalid regular expression: %v", err)
			}
		}
	}
}

// routeAction checks what a route does: send to a cluster, answer
// directly, or redirect; and the keys that go with each.
func (v *validator) routeAction(p string, r *Route, clusters map[string]string) {
	actions := 0
	for _, set := range []bool{r.Cluster != "" || len(r.WeightedClusters) > 0, r.DirectResponse != nil, r.Redirect != nil} {
		if set {
			actions++
		}
	}
	switch {
	case actions == 0:
		v.errorf(p+".cluster", "required: name the cluster this route sends to (or set weighted_clusters, direct_response or redirect)")
	case actions > 1:
		v.errorf(v.first(p+".redirect", p+".direct_response", p+".cluster", p+".weighted_clusters"), "set one of cluster (or weighted_clusters), direct_response and redirect")
	case r.Cluster != "":
		if _, ok := clusters[r.Cluster]; !ok && !v.failedUnder("clusters") {
			v.errorf(p+".cluster", "unknown cluster %q%s", r.Cluster, suggestName(r.Cluster, clusters))
		}
	}
	if d := r.DirectResponse; d != nil {
		if d.Status < 200 || d.Status > 599 {
			v.errorf(p+".direct_response.status", "must be between 200 and 599, got %d", d.Status)
		}
		if d.ContentType != "" && !validFieldValue(d.ContentType) {
			v.errorf(p+".direct_response.content_type", "invalid header value %q", d.ContentType)
		}
	}
	if rd := r.Redirect; rd != nil {
		rp := p + ".redirect"
		switch rd.Status {
		case 301, 302, 303, 307, 308:
		default:
			v.errorf(rp+".status", "must be 301, 302, 303, 307 or 308, got %d", rd.Status)
		}
		if rd.Scheme == "" && rd.Host == "" && rd.Path == "" && rd.PathPrefix == "" && !rd.StripQuery {
			v.errorf(rp, "a redirect needs a target: set scheme, host, path, path_prefix or strip_query")
		}
		if rd.Scheme != "" && rd.Scheme != "http" && rd.Scheme != "https" {
			v.errorf(rp+".scheme", "must be \"http\" or \"https\", got %q", rd.Scheme)
		}
		if rd.Host != "" && (strings.ContainsAny(rd.Host, "/?#@ \t") || !validFieldValue(rd.Host)) {
			v.errorf(rp+".host", "invalid host %q", rd.Host)
		}
		if rd.Path != "" && rd.PathPrefix != "" {
			v.errorf(rp+".path_prefix", "set path or path_prefix, not both")
		}
		v.replacementPath(rp+".path", rd.Path)
		v.replacementPath(rp+".path_prefix", rd.PathPrefix)
		if rd.PathPrefix != "" && r.Match.PathPrefix == "" && r.Match.PathExact == "" {
			v.errorf(rp+".path_prefix", "needs match.path_prefix or match.path_exact: it replaces what they matched")
		}
	}
	if rw := r.Rewrite; rw != nil {
		rp := p + ".rewrite"
		if r.Cluster == "" {
			v.errorf(rp, "only a route that sends to a cluster rewrites its requests")
		}
		if rw.PathPrefix != "" && rw.PathRegex != "" {
			v.errorf(rp+".path_regex", "set path_prefix or path_regex, not both")
		}
		v.replacementPath(rp+".path_prefix", rw.PathPrefix)
		if rw.PathPrefix != "" && r.Match.PathPrefix == "" && r.Match.PathExact == "" {
			v.errorf(rp+".path_prefix", "needs match.path_prefix or match.path_exact: it replaces what they matched")
		}
		if rw.PathRegex != "" {
			if _, err := regexp.Compile(rw.PathRegex); err != nil {
				v.errorf(rp+".path_regex", "invalid regular expression: %v", err)
			}
		} else if rw.PathSubstitution != "" {
			v.errorf(rp+".path_substitution", "needs path_regex")
		}
		if rw.Host != "" && rw.KeepHost {
			v.errorf(rp+".keep_host", "set host or keep_host, not both")
		}
		if rw.Host != "" && (strings.ContainsAny(rw.Host, "/?#@ \t") || !validFieldValue(rw.Host)) {
			v.errorf(rp+".host", "invalid host %q", rw.Host)
		}
	}
	if r.DirectResponse != nil || r.Redirect != nil {
		// Keys that only mean something for a request sent upstream would
		// be parsed and ignored: refuse them.
		if r.Timeout > 0 {
			v.errorf(p+".timeout", "a route that answers by itself has no upstream exchange to bound")
		}
		if r.Cache != nil {
			v.errorf(p+".cache", "a route that answers by itself does not use the cache")
		}
		if r.RequestHeaderOps != nil {
			v.errorf(p+".request_header_ops", "a route that answers by itself sends no request upstream")
		}
		if r.Mirror != nil {
			v.errorf(p+".mirror", "a route that answers by itself sends no request upstream to copy")
		}
		if r.Retries != nil {
			v.errorf(p+".retries", "a route that answers by itself sends no request upstream to retry")
		}
	}
	v.headerOps(p+".request_header_ops", r.RequestHeaderOps, ownedRequestFields)
	v.headerOps(p+".response_header_ops", r.ResponseHeaderOps, ownedResponseFields)
}

// replacementPath checks a path that replaces the request's.
func (v *validator) replacementPath(p, s string) {
	switch {
	case s == "":
	case !strings.HasPrefix(s, "/"):
		v.errorf(p, "must start with \"/\", got %q", s)
	case strings.ContainsAny(s, "?# \t") || !validFieldValue(s):
		v.errorf(p, "must be a path without query, fragment or spaces, got %q", s)
	}
}

// ownedRequestFields are the request fields a route may not change
// upstream: the framing's, the hop's, and the ones the proxy sets.
var ownedRequestFields = []string{"connection", "content-length", "host", "keep-alive", "proxy-connection",
	"te", "trailer", "transfer-encoding", "upgrade", "x-request-id"}

func (v *validator) headerOps(p string, ops *HeaderOps, owned []string) {
	if ops == nil {
		return
	}
	for _, part := range []struct {
		key string
		m   map[string]string
	}{{"add", ops.Add}, {"set", ops.Set}} {
		names := make([]string, 0, len(part.m))
		for k := range part.m {
			names = append(names, k)
		}
		slices.Sort(names)
		v.headerNames(p+"."+part.key, names)
		for _, k := range names {
			switch val := part.m[k]; {
			case slices.Contains(owned, strings.ToLower(k)):
				v.errorf(p+"."+part.key+"."+k, "%q is set by the proxy or the framing, not by a route", k)
			case !validFieldValue(val):
				v.errorf(p+"."+part.key+"."+k, "invalid header value %q: no control characters, no leading or trailing space", val)
			}
		}
	}
	v.headerNames(p+".remove", ops.Remove)
	for i, k := range ops.Remove {
		if slices.Contains(owned, strings.ToLower(k)) {
			v.errorf(fmt.Sprintf("%s.remove[%d]", p, i), "%q is set by the proxy or the framing, not by a route", k)
		}
	}
	for k := range ops.Add {
		for s := range ops.Set {
			if strings.EqualFold(k, s) {
				v.errorf(p+".add."+k, "%q is also in set; set replaces, add appends: use one", k)
			}
		}
	}
}

func (d *DirectResponse) setDefaults() { d.Status = http.StatusOK }
func (r *Redirect) setDefaults()       { r.Status = http.StatusFound }
