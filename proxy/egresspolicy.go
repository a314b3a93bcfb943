package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/egresspolicy"
)

// The egress policy (config.Egress, docs/egress.md): which destinations a
// forward listener's clients may reach, beyond the built-in refusals of
// egress.go. It is checked three times, each with what is known then:
//
//  1. Before the cache, by the listener filter egressFilter (both entry
//     paths) and by tunnel for CONNECT: on the name or address the
//     client gave, its port, scheme and method. A rule that needs the
//     address of a name (cidrs) leaves the decision open.
//  2. When a connection is dialled (the dialer's ControlContext), on the
//     address about to be connected to: nothing is connected to that a
//     rule refuses, and a name cannot smuggle a refused address.
//  3. For every request, on the connection it is about to be sent on
//     (h1's CheckConn; for a tunnel, the connection dialled): a pooled
//     connection was checked for the request that dialled it, whose
//     method may have been another. This is the final decision, the one
//     audited and counted.
//
// The built-in refusals come first and no rule lifts them; the listener's
// forward.allow_loopback and forward.allow_destinations do, and the
// policy still applies to what they let through.

// refusePolicy is the refusal reason of a destination a rule (or the
// default action) refused.
const refusePolicy = "policy"

// egressPolicy is a configuration's compiled egress section.
type egressPolicy struct {
	pol   *egresspolicy.Policy
	audit *slog.Logger // nil: no audit lines
}

// egressShared is what outlives a configuration: the audit files, open
// once per path, and the decision counters.
type egressShared struct {
	mu        sync.Mutex
	files     map[string]*os.File
	decisions *prometheus.CounterVec
	counters  sync.Map // decisionKey -> prometheus.Counter
}

type decisionKey struct {
	listener, rule string
	allow          bool
}

func (e *egressShared) init(reg prometheus.Registerer) error {
	e.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerohop_egress_decisions_total",
		Help: "Egress policy decisions on outbound requests and tunnels of forward listeners, by rule (builtin:<reason> for the built-in refusals) and action (allow, deny).",
	}, []string{"listener", "rule", "action"})
	return reg.Register(e.decisions)
}

func (e *egressShared) count(listener, rule string, allow bool) {
	k := decisionKey{listener, rule, allow}
	c, ok := e.counters.Load(k)
	if !ok {
		action := "deny"
		if allow {
			action = "allow"
		}
		c, _ = e.counters.LoadOrStore(k, e.decisions.WithLabelValues(listener, rule, action))
	}
	c.(prometheus.Counter).Inc()
}

func (e *egressShared) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.files {
		f.Close()
	}
	e.files = nil
}

// compileEgress builds the policy of e (nil: none). The audit file is
// opened here, once per path for the proxy's life, so that a reload that
// keeps the path keeps appending to the same file.
func (p *Proxy) compileEgress(e *config.Egress) (*egressPolicy, error) {
	if e == nil {
		return nil, nil
	}
	specs := make([]egresspolicy.Spec, len(e.Rules))
	for i, r := range e.Rules {
		specs[i] = egresspolicy.Spec{Name: r.Name, Allow: r.Action == "allow", Hosts: r.Hosts, CIDRs: r.CIDRs,
			Ports: r.Ports, Schemes: r.Schemes, Methods: r.Methods}
	}
	pol, err := egresspolicy.New(e.Default == "allow", specs)
	if err != nil {
		return nil, fmt.Errorf("proxy: egress: %w", err)
	}
	ep := &egressPolicy{pol: pol, audit: p.opts.AccessLog}
	if e.AuditLog != "" {
		s := &p.eg
		s.mu.Lock()
		defer s.mu.Unlock()
		f := s.files[e.AuditLog]
		if f == nil {
			if f, err = os.OpenFile(e.AuditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err != nil {
				return nil, fmt.Errorf("proxy: egress.audit_log: %w", err)
			}
			if s.files == nil {
				s.files = map[string]*os.File{}
			}
			s.files[e.AuditLog] = f
		}
		ep.audit = slog.New(slog.NewJSONHandler(f, nil))
	}
	return ep, nil
}

// egressFilters is the listener filter of forward and transparent
// listeners: the built-in refusals and the policy's first check, on
// requests without a route (a route's cluster is the operator's choice, not the client's).
func (p *Proxy) egressFilters(st *state, l config.Listener) chain {
	if l.Mode != config.ModeForward && l.Mode != config.ModeTransparent {
		return nil
	}
	return chain{&egressFilter{p: p, g: p.guardFor(l), pol: st.egress}}
}

// hasEgressFilter reports whether c starts with a forward listener's
// egress filter, as every chain of a listener the configuration names
// does.
func hasEgressFilter(c chain) bool {
	if len(c) == 0 {
		return false
	}
	_, ok := c[0].(*egressFilter)
	return ok
}

type egressFilter struct {
	passFilter
	p   *Proxy
	g   *egressGuard
	pol *egressPolicy // nil: the built-in refusals only
}

func (*egressFilter) Name() string { return "egress" }

func (f *egressFilter) OnRequest(r request, a *answer) verdict {
	if r.Route() != "" {
		return filterContinue
	}
	var ref *refusal
	if dst := r.Destination(); dst.IsValid() {
		// Transparent: the address the app dialled, whatever its Host says.
		ref = f.g.decideAddr(f.pol, r.Host(), dst, "http", r.Method())
	} else {
		ref = f.g.decideHost(f.pol, r.Host(), 80, "http", r.Method())
	}
	if ref == nil {
		return filterContinue
	}
	*a = answer{Status: http.StatusForbidden, Fields: ref.fields(), Body: "zerohop: " + ref.message() + "\n", Note: ref.ruleName()}
	return filterAnswered
}

// OnResponse records the filter's own refusal, once the request is an
// exchange with its request id (the answer is always written by
// net/http's path, also for a request the fast path filtered).
func (f *egressFilter) OnResponse(r request, _ int, _ fields) {
	x, ok := r.(*exchange)
	if !ok || x.answeredBy != f {
		return
	}
	if ref := f.g.decideHost(f.pol, x.host, 80, "http", x.in.Method); ref != nil {
		f.p.egressRefused(x, ref)
	}
}

// decideHost is the check before anything is dialled: the built-in
// refusals (checkHost), then the policy on what the client named.
func (g *egressGuard) decideHost(pol *egressPolicy, hostport string, defPort uint16, scheme, method string) *refusal {
	if r := g.checkHost(hostport, defPort); r != nil {
		return r
	}
	if pol == nil {
		return nil
	}
	d, ok := parseDest(hostport, defPort)
	if !ok {
		return nil // not a port: the request fails on its own
	}
	d.Scheme, d.Method = scheme, method
	if rule, allow := pol.pol.Decide(d); !allow {
		return &refusal{reason: refusePolicy, rule: rule.Name, dest: hostport}
	}
	return nil
}

// decideAddr is decideHost for a destination whose address is known: a
// transparent listener's connection, dialled by the app to dst. The
// built-in refusals apply to dst; the policy sees the name the app
// claims (the Host field or a TLS server name, "" for none) with dst's
// address and port, so address rules hold whatever the name says.
func (g *egressGuard) decideAddr(pol *egressPolicy, name string, dst netip.AddrPort, scheme, method string) *refusal {
	if r := g.check(dst); r != nil {
		return r
	}
	if pol == nil {
		return nil
	}
	d, _ := parseDest(name, dst.Port())
	d.Addr, d.Port = dst.Addr().Unmap().WithZone(""), dst.Port()
	d.Scheme, d.Method = scheme, method
	if rule, allow := pol.pol.Decide(d); !allow {
		dest := name
		if dest == "" {
			dest = dst.String()
		}
		return &refusal{reason: refusePolicy, rule: rule.Name, dest: dest, addr: dst}
	}
	return nil
}

// parseDest splits host[:port] into the policy's view of it; an address
// literal also sets Addr.
func parseDest(hostport string, defPort uint16) (egresspolicy.Dest, bool) {
	host, port := hostport, defPort
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && strings.IndexByte(hostport[i:], ']') < 0 {
		n, err := strconv.ParseUint(hostport[i+1:], 10, 16)
		if err != nil {
			return egresspolicy.Dest{}, false
		}
		host, port = hostport[:i], uint16(n)
	}
	d := egresspolicy.Dest{Host: egresspolicy.NormalizeHost(host), Port: port}
	if h := d.Host; h != "" && ('0' <= h[0] && h[0] <= '9' || strings.IndexByte(h, ':') >= 0) {
		if a, err := netip.ParseAddr(h); err == nil {
			d.Addr = a.Unmap().WithZone("")
		}
	}
	return d, true
}

// exchangeDest is the destination of x's outbound request or tunnel.
func exchangeDest(x *exchange) egresspolicy.Dest {
	method, scheme, defPort := http.MethodGet, x.scheme, uint16(80)
	if x.in != nil { // nil for a background refresh, always a GET
		method = x.in.Method
	}
	if method == http.MethodConnect {
		scheme, defPort = "https", 0
	}
	d, _ := parseDest(x.host, defPort)
	d.Scheme, d.Method = scheme, method
	return d
}

// controlCtx is the egress pool's and CONNECT's dialer check: the
// built-in refusals, then the policy, on the address about to be
// connected to.
func (g *egressGuard) controlCtx(ctx context.Context, network, address string, c syscall.RawConn) error {
	if err := g.control(network, address, c); err != nil {
		return err
	}
	x := exchangeFrom(ctx)
	if x == nil || x.st == nil || x.st.egress == nil {
		return nil
	}
	ap, _ := netip.ParseAddrPort(address) // control parsed it
	d := exchangeDest(x)
	d.Addr, d.Port = ap.Addr().Unmap().WithZone(""), ap.Port()
	if rule, allow := x.st.egress.pol.Decide(d); !allow {
		return &refusal{reason: refusePolicy, rule: rule.Name, dest: x.host, addr: ap}
	}
	return nil
}

// checkConn is the final decision on x's request or tunnel, on the
// connection it goes on: audited and counted when allowed; a refusal is
// returned (and recorded by refuse, which answers it).
func (g *egressGuard) checkConn(ctx context.Context, c net.Conn, _ bool) error {
	x := exchangeFrom(ctx)
	if x == nil || x.st == nil || x.st.egress == nil {
		return nil
	}
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return nil
	}
	ap := ta.AddrPort()
	d := exchangeDest(x)
	d.Addr, d.Port = ap.Addr().Unmap().WithZone(""), ap.Port()
	rule, allow := x.st.egress.pol.Decide(d)
	if !allow {
		return &refusal{reason: refusePolicy, rule: rule.Name, dest: x.host, addr: ap}
	}
	x.p.egressAudit(x, x.st.egress, rule.Name, true, ap)
	return nil
}

// egressRefused records a refusal: zerohop_egress_refused_total, the
// operational log, and with a policy the decision counter and the audit
// line.
func (p *Proxy) egressRefused(x *exchange, r *refusal) {
	p.m.egressRefused.WithLabelValues(x.lis.Name, r.reason).Inc()
	p.log.Info("forward destination refused", "request_id", x.reqID, "listener", x.lis.Name,
		"destination", r.dest, "reason", r.reason, "rule", r.ruleName())
	if x.st != nil && x.st.egress != nil {
		p.egressAudit(x, x.st.egress, r.ruleName(), false, r.addr)
	}
}

// egressAudit counts a decision and writes its audit line.
func (p *Proxy) egressAudit(x *exchange, ep *egressPolicy, rule string, allow bool, addr netip.AddrPort) {
	p.eg.count(x.lis.Name, rule, allow)
	if ep.audit == nil {
		return
	}
	d := exchangeDest(x)
	kind, decision := "request", "deny"
	switch {
	case d.Method == http.MethodConnect:
		kind = "tunnel"
	case x.refresh:
		kind = "refresh"
	}
	if allow {
		decision = "allow"
	}
	address := ""
	if addr.IsValid() {
		address = addr.String()
	}
	ep.audit.LogAttrs(context.Background(), slog.LevelInfo, "egress",
		slog.String("request_id", x.reqID),
		slog.String("listener", x.lis.Name),
		slog.String("kind", kind),
		slog.String("method", d.Method),
		slog.String("scheme", d.Scheme),
		slog.String("destination", x.host),
		slog.String("address", address),
		slog.String("rule", rule),
		slog.String("decision", decision))
}

// ruleName is the name a refusal reports: the policy rule's, or
// builtin:<reason>.
func (r *refusal) ruleName() string {
	if r.rule != "" {
		return r.rule
	}
	return "builtin:" + r.reason
}

// fields are the refusal's response fields: Proxy-Status (RFC 9209) and
// the rule.
func (r *refusal) fields() [][2]string {
	return [][2]string{
		{"Proxy-Status", `zerohop; error=destination_ip_prohibited; details="` + sfString(r.reason+" "+r.ruleName()+" "+r.dest) + `"`},
		{"X-Zerohop-Egress-Rule", r.ruleName()},
	}
}

// message is the refusal's body text.
func (r *refusal) message() string {
	return "destination " + r.dest + " refused by egress rule " + strconv.Quote(r.ruleName()) + ": " + r.explain()
}
