package proxy

import "net/http"

// routeBodyLimit applies a route's max_request_body, after routing and
// the request phase (the listener's cap was applied before either): a
// declared length over the cap is answered 413 at once, and a streamed
// body is cut off at the cap, as the listener's cap does. It reports
// whether the request goes on.
func (p *Proxy) routeBodyLimit(w http.ResponseWriter, rec *recorder, r *http.Request, x *exchange) bool {
	limit := int64(x.route.cfg.MaxRequestBody)
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	if r.ContentLength > limit {
		p.fail(rec, x, http.StatusRequestEntityTooLarge, "request body too large")
		return false
	}
	// w, not rec: the server then closes the connection on overflow. A
	// listener cap already on the body still applies; the smaller wins.
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	return true
}
