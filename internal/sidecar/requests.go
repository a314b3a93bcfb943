package sidecar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/zerohop/zerohop/proxy"
)

// handleRequests serves the proxy's recent (or slow) requests, newest
// first: GET /requests?route=R&status=503|5xx&cache=hit&min_duration=100ms&slow=1&limit=N.
func (s *Sidecar) handleRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := proxy.RequestFilter{Route: q.Get("route"), Cache: q.Get("cache"), Slow: q.Get("slow") == "1" || q.Get("slow") == "true"}
	bad := func(name string, err error) {
		http.Error(w, fmt.Sprintf("%s: %v", name, err), http.StatusBadRequest)
	}
	if v := q.Get("status"); v != "" {
		if len(v) == 3 && v[1:] == "xx" && v[0] >= '1' && v[0] <= '5' {
			f.StatusClass = int(v[0] - '0')
		} else if n, err := strconv.Atoi(v); err == nil && n >= 100 && n <= 999 {
			f.Status = n
		} else {
			bad("status", fmt.Errorf("want a status (503) or a class (5xx), got %q", v))
			return
		}
	}
	if v := q.Get("min_duration"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad("min_duration", fmt.Errorf("want a duration such as 100ms, got %q", v))
			return
		}
		f.MinDuration = d
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad("limit", fmt.Errorf("want a count, got %q", v))
			return
		}
		f.Limit = n
	}
	recs := s.proxy.Requests(f)
	if recs == nil {
		recs = []proxy.RequestRecord{}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(map[string]any{
		"slow_threshold_ms": s.proxy.SlowThreshold().Milliseconds(),
		"kept":              map[string]int{"recent": proxy.RecentRequests, "slow": proxy.SlowRequests},
		"requests":          recs,
	})
}
