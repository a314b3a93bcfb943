package proxy_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerohop/zerohop/config"
)

// egressAnswer sends raw on a new connection and reads the answer; for a
// CONNECT that is let through, it sends one request through the tunnel.
func egressAnswer(t *testing.T, h *harness, raw string) (code int, rule, body string) {
	t.Helper()
	c, br := h.dial()
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	if strings.HasPrefix(raw, "CONNECT") && resp.StatusCode == 200 {
		io.WriteString(c, "GET /tunnelled HTTP/1.1\r\nHost: x\r\n\r\n")
		in, err := http.ReadResponse(bufio.NewReader(br), nil)
		if err != nil || in.StatusCode != 200 {
			t.Fatalf("%q: through the tunnel: %v %v", raw, err, in)
		}
		in.Body.Close()
		return 200, resp.Header.Get("X-Zerohop-Egress-Rule"), ""
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Zerohop-Egress-Rule"), string(b)
}

// auditLines reads the JSON lines of an audit file.
func auditLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestEgressPolicy sends forward requests (an absolute-form GET, which
// the fast path takes; a POST, which net/http's path does) and CONNECT
// to real loopback origins under a policy with a rule for each case, on
// a listener with the fast path and on one without: what is allowed
// reaches its origin, what is refused answers 403 naming the rule and
// never reaches it, and each decision has its audit line.
func TestEgressPolicy(t *testing.T) {
	for _, plain := range []bool{false, true} {
		a := newUpstream(t, nil, echoHandler) // allowed by address and port
		b := newUpstream(t, nil, echoHandler) // denied by port (a later rule would allow it: first match wins)
		c := newUpstream(t, nil, echoHandler) // no rule: the default, deny
		d := newUpstream(t, nil, echoHandler) // a name allowed by a later rule, resolving to a refused address
		e := newUpstream(t, nil, echoHandler) // reached by name; POST refused by address (on the pooled connection)
		port := func(u *upstream) string { _, p, _ := net.SplitHostPort(u.hostport()); return p }
		audit := filepath.Join(t.TempDir(), "audit.jsonl")
		h := newHarness(t, harnessOptions{mode: config.ModeForward, plainServer: plain, config: func(cfg *config.Config) {
			cfg.Egress = &config.Egress{Default: "deny", AuditLog: audit, Rules: []config.EgressRule{
				{Name: "deny-b", Action: "deny", Ports: []string{port(b)}},
				{Name: "allow-b-too", Action: "allow", Ports: []string{port(b)}},
				{Name: "a-by-address", Action: "allow", CIDRs: []string{"127.0.0.1"}, Ports: []string{port(a)}},
				{Name: "d-refused-address", Action: "deny", CIDRs: []string{"127.0.0.0/8", "::1/128"}, Ports: []string{port(d)}},
				{Name: "no-post-e", Action: "deny", Methods: []string{"POST"}, CIDRs: []string{"127.0.0.0/8", "::1/128"}, Ports: []string{port(e)}},
				{Name: "names", Action: "allow", Hosts: []string{"localhost"}},
			}}
		}})
		type want struct {
			dest, rule string
			allow      bool
		}
		rows := []want{
			{a.hostport(), "a-by-address", true},
			{b.hostport(), "deny-b", false},
			{c.hostport(), "default", false},
			{"localhost:" + port(d), "d-refused-address", false},
		}
		var audits []want
		methods := []string{"GET", "POST", "CONNECT"}
		for _, r := range rows {
			for i, req := range egressRequests {
				code, rule, body := egressAnswer(t, h, req.raw(r.dest))
				switch {
				case r.allow && code != 200:
					t.Errorf("plain=%v %s %s: %d %s; want 200", plain, req.name, r.dest, code, body)
				case !r.allow && (code != http.StatusForbidden || rule != r.rule || !strings.Contains(body, `"`+r.rule+`"`)):
					t.Errorf("plain=%v %s %s: %d rule %q body %q; want 403 by %q", plain, req.name, r.dest, code, rule, body, r.rule)
				}
				audits = append(audits, want{methods[i] + " " + r.dest, r.rule, r.allow})
			}
		}
		// e: GET by name is allowed, and pools its connection; POST by
		// the same name is refused by address, on that connection;
		// CONNECT (not a POST) is allowed by name.
		for i, req := range egressRequests {
			wantRule, allow := "names", i != 1
			if !allow {
				wantRule = "no-post-e"
			}
			before := e.hits.Load()
			code, rule, body := egressAnswer(t, h, req.raw("localhost:"+port(e)))
			if allow && code != 200 || !allow && (code != 403 || rule != wantRule) {
				t.Errorf("plain=%v %s localhost:%s: %d %q %s; want allowed=%v by %q", plain, req.name, port(e), code, rule, body, allow, wantRule)
			}
			if !allow && e.hits.Load() != before {
				t.Errorf("plain=%v: the refused POST reached the origin", plain)
			}
			audits = append(audits, want{methods[i] + " localhost:" + port(e), wantRule, allow})
		}
		for _, u := range []*upstream{b, c, d} {
			if n := u.hits.Load(); n != 0 {
				t.Errorf("plain=%v: a refused origin got %d requests", plain, n)
			}
		}
		if a.hits.Load() != 3 {
			t.Errorf("plain=%v: the allowed origin got %d requests; want 3", plain, a.hits.Load())
		}

		// The audit: one line per decision, with destination, rule and
		// decision; allowed ones with the address connected to.
		lines := auditLines(t, audit)
		if len(lines) != len(audits) {
			t.Errorf("plain=%v: %d audit lines; want %d:\n%v", plain, len(lines), len(audits), lines)
		}
		for _, w := range audits {
			method, dest, _ := strings.Cut(w.dest, " ")
			found := false
			for _, l := range lines {
				if l["msg"] == "egress" && l["method"] == method && l["destination"] == dest && l["rule"] == w.rule {
					found = true
					decision := map[bool]string{true: "allow", false: "deny"}[w.allow]
					kind := map[bool]string{true: "tunnel", false: "request"}[method == "CONNECT"]
					if l["decision"] != decision || l["kind"] != kind || l["listener"] != "test" || l["request_id"] == "" {
						t.Errorf("plain=%v: audit line %v; want decision %s, kind %s", plain, l, decision, kind)
					}
					if w.allow && !strings.HasPrefix(l["address"].(string), "127.0.0.1:") && !strings.HasPrefix(l["address"].(string), "[::1]:") {
						t.Errorf("plain=%v: allowed audit line without the address: %v", plain, l)
					}
				}
			}
			if !found {
				t.Errorf("plain=%v: no audit line for %s (%s)", plain, w.dest, w.rule)
			}
		}
		for rule, n := range map[string]float64{"deny-b": 3, "default": 3, "a-by-address": 3, "d-refused-address": 3, "no-post-e": 1, "names": 2, "allow-b-too": 0} {
			if got := counter(t, h.p, "zerohop_egress_decisions_total", "rule", rule); got != n {
				t.Errorf("plain=%v: zerohop_egress_decisions_total{rule=%q} = %v; want %v", plain, rule, got, n)
			}
		}
		if got := counter(t, h.p, "zerohop_egress_refused_total", "reason", "policy"); got != 10 {
			t.Errorf("plain=%v: zerohop_egress_refused_total{reason=policy} = %v; want 10", plain, got)
		}
		h.close()
	}
}

// TestEgressBuiltinFirst: the built-in refusals come before the policy,
// which cannot lift them (a rule allowing everything does not open the
// metadata service or, without allow_loopback, loopback), and they name
// their builtin rule.
func TestEgressBuiltinFirst(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: echoHandler,
		listener: func(l *config.Listener) { l.Forward.AllowLoopback = false },
		config: func(cfg *config.Config) {
			cfg.Egress = &config.Egress{Default: "allow", AuditLog: audit, Rules: []config.EgressRule{
				{Name: "everything", Action: "allow", Hosts: []string{"*"}},
			}}
		}})
	for _, r := range []struct{ dest, rule string }{
		{"169.254.169.254:80", "builtin:metadata"},
		{h.up.hostport(), "builtin:loopback"},
	} {
		for _, req := range egressRequests {
			code, rule, body := egressAnswer(t, h, req.raw(r.dest))
			if code != 403 || rule != r.rule {
				t.Errorf("%s %s: %d %q %s; want 403 by %s", req.name, r.dest, code, rule, body, r.rule)
			}
		}
	}
	if h.up.hits.Load() != 0 {
		t.Error("the loopback origin was reached")
	}
	n := 0
	for _, l := range auditLines(t, audit) {
		if l["decision"] == "deny" && strings.HasPrefix(l["rule"].(string), "builtin:") {
			n++
		}
	}
	if n != 6 {
		t.Errorf("%d audit lines of built-in refusals; want 6", n)
	}
}

// TestEgressAuditToAccessLog: without audit_log the lines go to the
// access log.
func TestEgressAuditToAccessLog(t *testing.T) {
	h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: echoHandler, config: func(cfg *config.Config) {
		cfg.Egress = &config.Egress{Default: "allow"}
	}})
	if r := h.get("/x"); r.StatusCode != 200 {
		t.Fatalf("GET: %d", r.StatusCode)
	}
	for _, l := range h.logs.records() {
		if l["msg"] == "egress" && l["rule"] == "default" && l["decision"] == "allow" && l["destination"] == h.up.hostport() {
			return
		}
	}
	t.Errorf("no egress line in the access log: %v", h.logs.records())
}

// TestEgressListenerNotInConfig: a forward listener keeps running after a
// reload that renames it (listener changes wait for a restart); the new
// configuration has no chain for it, and its destinations are still
// checked before the cache, on both entry paths, with the policy in use:
// a response stored while the destination was allowed is not served once
// it is refused.
func TestEgressListenerNotInConfig(t *testing.T) {
	cacheable := func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "stored")
	}
	for _, plain := range []bool{false, true} {
		h := newHarness(t, harnessOptions{mode: config.ModeForward, handler: cacheable, plainServer: plain})
		get := "GET http://" + h.up.hostport() + "/c HTTP/1.1\r\nHost: " + h.up.hostport() + "\r\n\r\n"
		for i := 0; i < 2; i++ {
			if code, _, body := egressAnswer(t, h, get); code != 200 || body != "stored" {
				t.Fatalf("plain=%v: before the reload: %d %q", plain, code, body)
			}
		}
		cfg := *h.cfg
		cfg.Listeners = []config.Listener{h.cfg.Listeners[0]}
		cfg.Listeners[0].Name = "renamed"
		cfg.Egress = &config.Egress{Default: "deny"}
		if err := h.p.Reload(&cfg); err != nil {
			t.Fatal(err)
		}
		if code, rule, body := egressAnswer(t, h, get); code != 403 || rule != "default" {
			t.Errorf("plain=%v: the stored response of a refused destination: %d %q %q; want 403 by default", plain, code, rule, body)
		}
		for _, req := range egressRequests[1:] {
			if code, rule, body := egressAnswer(t, h, req.raw("192.0.2.1:80")); code != 403 || rule != "default" {
				t.Errorf("plain=%v %s: %d %q %s; want 403 by default", plain, req.name, code, rule, body)
			}
		}
		if h.up.hits.Load() != 1 {
			t.Errorf("plain=%v: the origin got %d requests; want 1", plain, h.up.hits.Load())
		}
		h.close()
	}
}
