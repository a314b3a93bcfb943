package sidecar

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/zerohop/zerohop/proxy"
)

// maxRequestsLimit caps limit= on /debug/requests: the rings hold fewer.
const maxRequestsLimit = 10000

// handleRequests serves GET /debug/requests: the timelines of recent (or,
// with slow=1, slow) requests, newest first, as JSON. Filters: route=,
// status= (503 or 5xx), cache= (hit, miss, ...), min_duration= (a Go
// duration: 250ms), limit= (default 100).
func (s *Sidecar) handleRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var tq proxy.TimelineQuery
	tq.Route, tq.Cache = q.Get("route"), q.Get("cache")
	bad := func(msg string) { http.Error(w, "debug/requests: "+msg, http.StatusBadRequest) }
	if v := q.Get("status"); v != "" {
		st, ok := proxy.ParseStatusFilter(v)
		if !ok {
			bad("status: want a status code (503) or a class (5xx), got " + strconv.Quote(v))
			return
		}
		tq.Status = st
	}
	if v := q.Get("min_duration"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad("min_duration: want a duration such as 250ms, got " + strconv.Quote(v))
			return
		}
		tq.MinDuration = d
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRequestsLimit {
			bad("limit: want 1 to " + strconv.Itoa(maxRequestsLimit) + ", got " + strconv.Quote(v))
			return
		}
		tq.Limit = n
	}
	switch v := q.Get("slow"); v {
	case "", "0", "false":
	case "1", "true":
		tq.Slow = true
	default:
		bad("slow: want 1 or 0, got " + strconv.Quote(v))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Requests []proxy.TimelineRecord `json:"requests"`
	}{s.proxy.Timelines(tq)})
}
