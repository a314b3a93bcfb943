package config

import "fmt"

// routeLimits checks the routes' concurrency caps
// (Route.MaxConcurrentRequests, Route.MaxConcurrentRequestsPerClient) and
// body cap (Route.MaxRequestBody).
func (v *validator) routeLimits(rs []Route) {
	for i := range rs {
		r := &rs[i]
		p := fmt.Sprintf("routes[%d]", i)
		if r.MaxConcurrentRequests < 0 {
			v.errorf(p+".max_concurrent_requests", "must be >= 0 (0 = no cap)")
		}
		if r.MaxConcurrentRequestsPerClient < 0 {
			v.errorf(p+".max_concurrent_requests_per_client", "must be >= 0 (0 = no cap)")
		}
		if r.MaxRequestBody < 0 {
			v.errorf(p+".max_request_body", "must be >= 0 (0 = the listener's cap only)")
		}
		if r.MaxConcurrentRequests > 0 && r.MaxConcurrentRequestsPerClient > r.MaxConcurrentRequests {
			v.errorf(p+".max_concurrent_requests_per_client", "%d is above the route's max_concurrent_requests (%d)",
				r.MaxConcurrentRequestsPerClient, r.MaxConcurrentRequests)
		}
	}
}
