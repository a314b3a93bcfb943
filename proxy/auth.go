package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/apikey"
	"github.com/zerohop/zerohop/proxy/internal/filewatch"
	"github.com/zerohop/zerohop/proxy/internal/jwtcheck"
)

// Authentication of callers (docs/auth.md): each top-level auth entry is
// one filter, built once per configuration and shared by the listeners
// and routes that name it. They run in the request phase, before the
// cache, so a stored response is served only to a caller that passed its
// route's checks; a refusal (401, 403) never reaches the upstream.
//
// The files and key sets behind an authenticator (a key file, a JWKS file
// or URL) are watched by one goroutine each; a reload whose authenticator
// is unchanged keeps them, a changed or removed one is stopped.

// authMetrics count the authenticators' outcomes.
type authMetrics struct {
	results *prometheus.CounterVec // authenticator, result
	reloads *prometheus.CounterVec // authenticator, result (ok, error)
}

func newAuthMetrics(reg prometheus.Registerer) (*authMetrics, error) {
	m := &authMetrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerohop_auth_results_total",
			Help: "Authentication outcomes by authenticator: ok, missing, invalid, expired, forbidden, denied, error.",
		}, []string{"authenticator", "result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerohop_auth_reloads_total",
			Help: "Reloads of key files and key sets by authenticator; result error keeps the old keys.",
		}, []string{"authenticator", "result"}),
	}
	for _, c := range []prometheus.Collector{m.results, m.reloads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// authRegistry holds the running authenticators, by name, across reloads.
type authRegistry struct {
	mu      sync.Mutex
	running map[string]*authRuntime
}

// authRuntime is one built authenticator and what keeps it current.
type authRuntime struct {
	cfg    config.Authenticator
	filter filter
	stop   context.CancelFunc
	done   chan struct{}
}

func (rt *authRuntime) close() {
	if rt.stop != nil {
		rt.stop()
		<-rt.done
	}
}

// authFilters builds (or keeps, when unchanged) the authenticators of cfg
// and returns them by name. The caller commits the set with
// commitAuth once the configuration is in use, or drops what was new
// with abortAuth.
func (p *Proxy) authFilters(cfg *config.Config) (map[string]*authRuntime, error) {
	p.auth.mu.Lock()
	defer p.auth.mu.Unlock()
	out := map[string]*authRuntime{}
	for _, ac := range cfg.Auth {
		if old := p.auth.running[ac.Name]; old != nil && reflect.DeepEqual(old.cfg, ac) {
			out[ac.Name] = old
			continue
		}
		rt, err := p.buildAuth(ac)
		if err != nil {
			p.dropNew(out)
			return nil, fmt.Errorf("proxy: auth %q: %w", ac.Name, err)
		}
		out[ac.Name] = rt
	}
	return out, nil
}

// dropNew stops the runtimes of set that are not running (built for a
// configuration that failed).
func (p *Proxy) dropNew(set map[string]*authRuntime) {
	for name, rt := range set {
		if p.auth.running[name] != rt {
			rt.close()
		}
	}
}

// commitAuth makes set the running authenticators and stops the ones it
// replaced.
func (p *Proxy) commitAuth(set map[string]*authRuntime) {
	p.auth.mu.Lock()
	defer p.auth.mu.Unlock()
	for name, rt := range p.auth.running {
		if set[name] != rt {
			rt.close()
		}
	}
	p.auth.running = set
}

// closeAuth stops every authenticator (Proxy.Close).
func (p *Proxy) closeAuth() { p.commitAuth(nil) }

func (p *Proxy) buildAuth(ac config.Authenticator) (*authRuntime, error) {
	rt := &authRuntime{cfg: ac}
	res := func(r string) prometheus.Counter { return p.authm.results.WithLabelValues(ac.Name, r) }
	reloaded := func(err error) {
		if err != nil {
			p.authm.reloads.WithLabelValues(ac.Name, "error").Inc()
			p.log.Warn("auth: reload refused; the old keys stay", "authenticator", ac.Name, "err", err)
			return
		}
		p.authm.reloads.WithLabelValues(ac.Name, "ok").Inc()
		p.log.Info("auth: keys reloaded", "authenticator", ac.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var run func()
	switch {
	case ac.IP != nil:
		rt.filter = newIPFilter(ac.Name, ac.IP, res)
	case ac.APIKey != nil:
		f, err := newAPIKeyFilter(ac.Name, ac.APIKey, res)
		if err != nil {
			cancel()
			return nil, err
		}
		rt.filter = f
		run = func() {
			filewatch.Watch(ctx, filewatch.Options{Path: ac.APIKey.File, OnError: reloaded,
				Load: func(b []byte) error {
					s, err := apikey.Parse(b)
					if err != nil {
						return fmt.Errorf("%s: %w", ac.APIKey.File, err)
					}
					f.keys.Store(s)
					reloaded(nil)
					return nil
				}}, f.content)
		}
	case ac.JWT != nil:
		f, src, err := newJWTFilter(ac.Name, ac.JWT, res, func(n int, err error) { reloaded(err) }, p.opts.Now)
		if err != nil {
			cancel()
			return nil, err
		}
		rt.filter = f
		run = func() { src.Run(ctx) }
	default:
		cancel()
		return nil, errors.New("no api_key, jwt or ip")
	}
	if run == nil {
		cancel()
		return rt, nil
	}
	rt.stop, rt.done = cancel, make(chan struct{})
	go func() {
		defer close(rt.done)
		run()
	}()
	return rt, nil
}

// attachAuth builds the authenticators of st's configuration and puts
// each route's in front of its chain (listeners' are added where their
// chains are built).
func (p *Proxy) attachAuth(st *state) error {
	auths, err := p.authFilters(st.cfg)
	if err != nil {
		return err
	}
	st.auth = auths
	// RFC 9111 §3.5 applies to a request authenticated by an API key
	// field as to one with Authorization (docs/auth.md).
	for i := range st.cfg.Auth {
		if f := st.cfg.Auth[i].CredentialField(); f != "" && f != "Authorization" &&
			!slices.Contains(st.storeOpts.CredentialFields, f) {
			st.storeOpts.CredentialFields = append(st.storeOpts.CredentialFields, f)
		}
	}
	for _, r := range st.routes {
		if len(r.cfg.Auth) > 0 {
			r.filters = append(authChain(r.cfg.Auth, auths), r.filters...)
		}
	}
	return nil
}

// authChain returns the filters of names, in order, from set.
func authChain(names []string, set map[string]*authRuntime) chain {
	var c chain
	for _, n := range names {
		if rt := set[n]; rt != nil {
			c = append(c, rt.filter)
		}
	}
	return c
}

// results are the counters of one authenticator's outcomes, resolved
// once so that counting costs no label lookup.
type results struct {
	ok, missing, invalid, expired, forbidden, denied prometheus.Counter
}

func newResults(res func(string) prometheus.Counter) results {
	return results{ok: res("ok"), missing: res("missing"), invalid: res("invalid"),
		expired: res("expired"), forbidden: res("forbidden"), denied: res("denied")}
}

// ---- IP lists ----

// ipFilter refuses callers by address (403).
type ipFilter struct {
	passFilter
	name        string
	allow, deny []netip.Prefix
	res         results
	refusal     answer
}

func newIPFilter(name string, c *config.IPAuth, res func(string) prometheus.Counter) *ipFilter {
	f := &ipFilter{name: name, res: newResults(res)}
	for _, s := range c.Allow {
		p, _ := config.ParsePrefix(s) // validated
		f.allow = append(f.allow, p)
	}
	for _, s := range c.Deny {
		p, _ := config.ParsePrefix(s)
		f.deny = append(f.deny, p)
	}
	f.refusal = answer{Status: 403, Body: "forbidden: client address not allowed\n", Note: "address not allowed"}
	return f
}

func (f *ipFilter) Name() string { return f.name }

func (f *ipFilter) OnRequest(r request, a *answer) verdict {
	if f.allowed(r.RemoteAddr()) {
		f.res.ok.Inc()
		return filterContinue
	}
	f.res.denied.Inc()
	*a = f.refusal
	return filterAnswered
}

func (f *ipFilter) allowed(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	var addr netip.Addr
	if err == nil {
		addr = ap.Addr()
	} else if addr, err = netip.ParseAddr(remote); err != nil {
		return false // an address we cannot read is not on an allow list
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range f.deny {
		if p.Contains(addr) {
			return false
		}
	}
	if len(f.allow) == 0 {
		return true
	}
	for _, p := range f.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ---- API keys ----

// apiKeyFilter authenticates by an API key (401 with an ApiKey
// challenge when it is missing or unknown).
type apiKeyFilter struct {
	passFilter
	name    string
	header  string // canonical; "" = query only
	query   string
	strip   bool
	keys    atomic.Pointer[apikey.Set]
	content []byte // the file as loaded first, for the watcher
	res     results
	missing answer
	invalid answer
}

func newAPIKeyFilter(name string, c *config.APIKeyAuth, res func(string) prometheus.Counter) (*apiKeyFilter, error) {
	b, err := os.ReadFile(c.File)
	if err != nil {
		return nil, err
	}
	s, err := apikey.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.File, err)
	}
	f := &apiKeyFilter{name: name, query: c.Query, strip: c.StripCredential, content: b, res: newResults(res)}
	if c.Header != "" {
		f.header = http.CanonicalHeaderKey(c.Header)
	}
	f.keys.Store(s)
	where := f.header
	if where == "" {
		where = "?" + f.query
	}
	challenge := fmt.Sprintf(`ApiKey realm="%s", in="%s"`, c.Realm, where)
	f.missing = answer{Status: 401, Fields: [][2]string{{"Www-Authenticate", challenge}},
		Body: "unauthorized: an API key is required\n", Note: "no key"}
	f.invalid = answer{Status: 401, Fields: [][2]string{{"Www-Authenticate", challenge + `, error="invalid_key"`}},
		Body: "unauthorized: unknown API key\n", Note: "unknown key"}
	return f, nil
}

func (f *apiKeyFilter) Name() string { return f.name }

func (f *apiKeyFilter) OnRequest(r request, a *answer) verdict {
	key := ""
	if f.header != "" {
		key = r.Field(f.header)
	}
	if key == "" && f.query != "" {
		key = queryValue(r.Target(), f.query)
	}
	if key == "" {
		f.res.missing.Inc()
		*a = f.missing
		return filterAnswered
	}
	var consumer string
	var ok bool
	if m, memo := r.(apiKeyMemoer); memo { // the fast path: a connection's repeated key (authmemo.go)
		consumer, ok = m.apiKeyMemo().check(f.keys.Load(), key)
	} else {
		consumer, ok = f.keys.Load().Check(key)
	}
	if !ok {
		f.res.invalid.Inc()
		*a = f.invalid
		return filterAnswered
	}
	f.res.ok.Inc()
	r.SetConsumer(consumer) // the set's own string, not request bytes
	return filterContinue
}

func (f *apiKeyFilter) OnUpstream(_ request, h fields) {
	if f.strip {
		h.Del(f.header)
	}
}

// queryValue returns the raw value of the first parameter name in
// target's query, without allocating ("" when absent). API keys are
// URL-safe; a percent-encoded key is compared as written.
func queryValue(target, name string) string {
	i := strings.IndexByte(target, '?')
	if i < 0 {
		return ""
	}
	q := target[i+1:]
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// ---- JWT ----

// jwtFilter authenticates by a bearer token (RFC 6750: 401 with a
// Bearer challenge; 403 insufficient_scope for a missing required claim).
type jwtFilter struct {
	passFilter
	name      string
	strip     bool
	v         *jwtcheck.Verifier
	res       results
	missing   answer
	invalid   map[error]answer // by jwtcheck error
	other     answer
	forbidden answer
}

func newJWTFilter(name string, c *config.JWTAuth, res func(string) prometheus.Counter, reloaded func(int, error), now func() time.Time) (*jwtFilter, *jwtcheck.Source, error) {
	v := jwtcheck.New(jwtcheck.Options{
		Algorithms: c.Algorithms, Issuer: c.Issuer, Audiences: c.Audiences, ClockSkew: c.ClockSkew,
		RequireExpiry: c.RequireExpiry, ConsumerClaim: c.ConsumerClaim, RequireClaims: c.RequireClaims,
		CacheSize: c.CacheSize, Now: now,
	})
	src, err := jwtcheck.NewSource(v, jwtcheck.SourceOptions{
		JWKSFile: c.JWKSFile, JWKSURL: c.JWKSURL, HMACSecretFile: c.HMACSecretFile, Algorithms: c.Algorithms,
		RefreshInterval: c.RefreshInterval, MinRefreshInterval: c.MinRefreshInterval, OnReload: reloaded,
	})
	if err != nil {
		return nil, nil, err
	}
	f := &jwtFilter{name: name, strip: c.StripCredential, v: v, res: newResults(res), invalid: map[error]answer{}}
	realm := fmt.Sprintf(`Bearer realm="%s"`, c.Realm)
	// RFC 6750 §3.1: no error code when the request had no token.
	f.missing = answer{Status: 401, Fields: [][2]string{{"Www-Authenticate", realm}},
		Body: "unauthorized: a bearer token is required\n", Note: "no token"}
	bad := func(why string) answer {
		return answer{Status: 401, Fields: [][2]string{{"Www-Authenticate",
			realm + `, error="invalid_token", error_description="` + why + `"`}},
			Body: "unauthorized: " + why + "\n", Note: why}
	}
	for err, why := range map[error]string{
		jwtcheck.ErrMalformed: "malformed token", jwtcheck.ErrSignature: "bad signature",
		jwtcheck.ErrUnknownKey: "unknown key", jwtcheck.ErrExpired: "token expired",
		jwtcheck.ErrNotYet: "token not yet valid", jwtcheck.ErrIssuer: "wrong issuer",
		jwtcheck.ErrAudience: "wrong audience", jwtcheck.ErrConsumer: "no consumer claim",
		jwtcheck.ErrNoKeys: "no keys loaded",
	} {
		f.invalid[err] = bad(why)
	}
	f.other = bad("invalid token")
	f.forbidden = answer{Status: 403, Fields: [][2]string{{"Www-Authenticate",
		realm + `, error="insufficient_scope"`}}, Body: "forbidden: a required claim is missing\n", Note: "claim missing"}
	return f, src, nil
}

func (f *jwtFilter) Name() string { return f.name }

func (f *jwtFilter) OnRequest(r request, a *answer) verdict {
	tok := bearer(r.Field("Authorization"))
	if tok == "" {
		f.res.missing.Inc()
		*a = f.missing
		return filterAnswered
	}
	consumer, err := f.v.Verify(tok)
	if err == nil {
		f.res.ok.Inc()
		r.SetConsumer(consumer) // from the token's decoded claims: owned
		return filterContinue
	}
	switch {
	case errors.Is(err, jwtcheck.ErrClaims):
		f.res.forbidden.Inc()
		*a = f.forbidden
		return filterAnswered
	case errors.Is(err, jwtcheck.ErrExpired), errors.Is(err, jwtcheck.ErrNotYet):
		f.res.expired.Inc()
	default:
		f.res.invalid.Inc()
	}
	*a = f.other
	for e, ans := range f.invalid {
		if errors.Is(err, e) {
			*a = ans
			break
		}
	}
	return filterAnswered
}

func (f *jwtFilter) OnUpstream(_ request, h fields) {
	if f.strip {
		h.Del("Authorization")
	}
}

// bearer returns the token of an "Authorization: Bearer <token>" value
// (the scheme is case-insensitive, RFC 9110 §11.1), or "".
func bearer(v string) string {
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(v[7:])
}
