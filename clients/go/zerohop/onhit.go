package zerohop

import (
	"net/http"
	"time"
)

// HitInfo describes a response served from the shared mapping, for
// Options.OnHit. Such a hit never reaches the sidecar, so the sidecar's
// request timelines and spans do not see it; OnHit lets the app record it
// with its own tracer (see docs/observability.md for OpenTelemetry), while
// this package stays free of any tracing dependency.
type HitInfo struct {
	// Request is the app's request; its context carries the app's span,
	// if any.
	Request *http.Request
	// Start is when the lookup began; Duration how long the lookup and
	// the building of the response took.
	Start    time.Time
	Duration time.Duration
	// Status is the status served (304 when the app's conditional
	// matched); Bytes the body's length.
	Status int
	Bytes  int64
	// Age and TTL are the stored response's age and remaining freshness,
	// in seconds.
	Age, TTL int64
}

// hit tells the OnHit hook, if any, about resp.
func (c *Client) hit(req *http.Request, resp *http.Response, start time.Time, age, ttl int64) {
	if c.onHit == nil {
		return
	}
	c.onHit(HitInfo{Request: req, Start: start, Duration: time.Since(start), Status: resp.StatusCode,
		Bytes: max(resp.ContentLength, 0), Age: age, TTL: ttl})
}
