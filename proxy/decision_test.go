package proxy_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy"
)

// TestEjectedDecision: the request whose outcome ejected its endpoint
// says so in its access-log line and its /requests record; the requests
// before and after it do not. A 500 from a live upstream (consecutive
// 5xx), and a refused connection that a retry then got past
// ("retried,ejected"), on both entry paths.
func TestEjectedDecision(t *testing.T) {
	bothPaths(t, func(t *testing.T, plain bool) {
		failing := newUpstream(t, nil, func(w http.ResponseWriter, r *http.Request, n int64) {
			w.WriteHeader(http.StatusInternalServerError)
		})
		good := newUpstream(t, nil, func(w http.ResponseWriter, r *http.Request, n int64) {
			w.Header().Set("Cache-Control", "no-store")
		})
		dead := newUpstream(t, nil, func(http.ResponseWriter, *http.Request, int64) {})
		deadURL := dead.URL
		dead.Close() // connection refused from now on
		h := newHarness(t, harnessOptions{plainServer: plain, config: func(cfg *config.Config) {
			od := &config.OutlierDetection{Consecutive5xx: 2, ConsecutiveGatewayFailure: 1,
				BaseEjectionTime: time.Minute, MaxEjectionTime: time.Hour, MaxEjectionPercent: 50}
			five := cluster("five", failing.URL)
			five.Endpoints = append(five.Endpoints, config.Endpoint{URL: good.URL, Weight: 1})
			five.LBPolicy, five.OutlierDetection = config.LBRoundRobin, od
			refused := cluster("refused", deadURL)
			refused.Endpoints = append(refused.Endpoints, config.Endpoint{URL: good.URL, Weight: 1})
			refused.LBPolicy, refused.OutlierDetection = config.LBRoundRobin, od
			cfg.Clusters = []config.Cluster{five, refused}
			cfg.Routes = []config.Route{
				{Name: "five", Match: config.Match{PathPrefix: "/five/"}, Cluster: "five"},
				{Name: "refused", Match: config.Match{PathPrefix: "/refused/"}, Cluster: "refused", Retries: retries(2, config.RetryConnectFailure)},
			}
		}})
		// Round robin over failing, good: the second 500 ejects the
		// failing endpoint; then only good answers.
		n500, ejectedBy := 0, ""
		for i := range 6 {
			id := fmt.Sprintf("five-%d", i)
			w := ""
			if h.get(fmt.Sprintf("/five/%d", i), "X-Request-Id", id).StatusCode == 500 {
				if n500++; n500 == 2 {
					w, ejectedBy = "ejected", id
				}
			}
			if got, _ := logLine(t, h, id)["decision"].(string); got != w {
				t.Errorf("%s: access log decision %q; want %q", id, got, w)
			}
		}
		if n500 != 2 {
			t.Fatalf("%d answers 500; want 2 (then the failing endpoint is ejected)", n500)
		}
		// The dead endpoint's first refusal ejects it; the retry goes to
		// good. Which request meets it first depends on where round robin
		// starts: exactly one of two does.
		ejected := 0
		for i := range 2 {
			id := fmt.Sprintf("refused-%d", i)
			if r := h.get(fmt.Sprintf("/refused/%d", i), "X-Request-Id", id); r.StatusCode != 200 {
				t.Fatalf("%s: %d; want 200 (retried past the refusal)", id, r.StatusCode)
			}
			switch got, _ := logLine(t, h, id)["decision"].(string); got {
			case "retried,ejected":
				ejected++
				rec := record(t, h.p, id)
				if rec.Decision != "retried,ejected" {
					t.Errorf("%s: /requests decision %q; want retried,ejected", id, rec.Decision)
				}
			case "":
			default:
				t.Errorf("%s: access log decision %q", id, got)
			}
		}
		if ejected != 1 {
			t.Errorf("%d requests logged retried,ejected; want 1", ejected)
		}
		if rec := record(t, h.p, ejectedBy); rec.Decision != "ejected" {
			t.Errorf("%s: /requests decision %q; want ejected", ejectedBy, rec.Decision)
		}
		if rec := record(t, h.p, "five-5"); rec.Decision != "" {
			t.Errorf("five-5: /requests decision %q; want none", rec.Decision)
		}
	})
}

// record is request id's entry in the recent-requests ring.
func record(t *testing.T, p *proxy.Proxy, id string) proxy.RequestRecord {
	t.Helper()
	for _, r := range p.Requests(proxy.RequestFilter{}) {
		if r.RequestID == id {
			return r
		}
	}
	t.Fatalf("no /requests record for %s", id)
	return proxy.RequestRecord{}
}
