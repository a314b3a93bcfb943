package httpcache

import (
	"net/http"
	"net/url"
	"strings"
)

// TargetURI reconstructs the absolute target URI of req (RFC 9110 §7.1).
// A client request (absolute URL) is returned as a copy; for a server
// request the scheme is https when the connection used TLS and http
// otherwise, and the authority is req.Host. The fragment is dropped.
func TargetURI(req *http.Request) *url.URL {
	u := &url.URL{}
	if req.URL != nil {
		*u = *req.URL
	}
	if !u.IsAbs() || u.Host == "" {
		u.Scheme = "http"
		if req.TLS != nil {
			u.Scheme = "https"
		}
		if req.Host != "" {
			u.Host = req.Host
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u
}

// safeMethod reports the methods RFC 9110 §9.2.1 defines as safe. Method
// names are case-sensitive; anything else, including unknown methods, is
// treated as unsafe (RFC 9111 §4.4).
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// InvalidationURIs returns the URIs whose stored responses must be
// invalidated after the response (status, header h) to req (RFC 9111
// §4.4). It is nil unless the method is unsafe (or unknown) and the status
// is a non-error one (2xx or 3xx). Otherwise it holds the target URI and,
// when they have the same origin (scheme, host and port; RFC 9110 §4.3.1)
// as the target, the URI-references in Location and Content-Location,
// resolved against the target. Other origins are never invalidated, which
// prevents denial-of-service attacks on them. Same-origin URIs are returned
// with the target's scheme and authority spelling.
func InvalidationURIs(req *http.Request, status int, h http.Header) []*url.URL {
	if safeMethod(req.Method) || status < 200 || status > 399 {
		return nil
	}
	target := TargetURI(req)
	out := []*url.URL{target}
	for _, name := range [...]string{"Location", "Content-Location"} {
		v := h[name]
		if len(v) != 1 {
			continue // absent, or an invalid multi-valued singleton
		}
		ref, err := url.Parse(strings.Trim(v[0], " \t"))
		if err != nil || v[0] == "" {
			continue
		}
		u := target.ResolveReference(ref)
		u.Fragment, u.RawFragment = "", ""
		if !sameOrigin(u, target) {
			continue
		}
		// Same origin: spell scheme and authority as the target does, so
		// that the proxy derives the same cache key from both.
		u.Scheme, u.Host = target.Scheme, target.Host
		dup := false
		for _, o := range out {
			if o.String() == u.String() {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, u)
		}
	}
	return out
}

// sameOrigin compares the origins of two absolute URIs (RFC 9110 §4.3.1):
// scheme and host case-insensitively, ports after applying the scheme's
// default.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		effectivePort(a) == effectivePort(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return strings.TrimLeft(p, "0")
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}
