package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/proxy/internal/fastpath"
	"github.com/zerohop/zerohop/proxy/internal/origdst"
)

// FastListener wraps ln so that srv, serving listener l, gets the HTTP/1.1
// fast path (package proxy/internal/fastpath, docs/fast-path.md): the
// connection adapter, with this proxy's pipeline behind it. It installs
// srv.ConnState, keeping any hook already set. Call WaitFast after
// srv.Shutdown to let requests being served by the fast path finish.
func (p *Proxy) FastListener(ln net.Listener, l config.Listener, srv *http.Server) net.Listener {
	return fastpath.NewListener(ln, srv, fastpath.Options{
		Pipeline:          fastPipeline{p.newListenerHandler(l)},
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    int(l.MaxHeaderBytes),
		PolicyFields:      unkeyedOverrides,
		Inflight:          &p.fastInflight,
		Logger:            p.log,
	})
}

// WaitFast waits until no request is being served by the fast path, or ctx
// ends. The listeners' servers must have been shut down first.
func (p *Proxy) WaitFast(ctx context.Context) error { return fastpath.Wait(ctx, &p.fastInflight) }

// fastPipeline is the pipeline the adapter calls for a listener.
type fastPipeline struct{ h *listenerHandler }

func (f fastPipeline) Open(c *fastpath.Conn) fastpath.Handler {
	s := &fastSide{c: c, h: f.h}
	if f.h.l.Mode == config.ModeTransparent {
		s.dst, _ = origdst.Of(c.NetConn()) // none: the general path answers
	}
	return s
}

// fastSide is the pipeline's side of one fast-path connection: the hit
// path's scratch, reused from request to request.
type fastSide struct {
	c *fastpath.Conn
	h *listenerHandler

	req                  fastRequest    // the request view the filters see
	rf                   fastFields     // what the filters set on the response
	pre                  fastPre        // the request phase's outcome, for the general path
	dst                  netip.AddrPort // transparent mode: the connection's original destination
	keyMemo              apiKeyMemo     // the last API key accepted on the connection (authmemo.go)
	key, vkey, ebuf      []byte
	lastHost, lastTarget string
	idBuf                [32]byte
	num                  [40]byte
}

func (s *fastSide) ServeFast() (served, keep bool) { return s.serveHit() }

func (s *fastSide) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

// Begin makes the exchange of a request the adapter hands to ServeHTTP:
// the adapter's slot is part of it, and the context carries it.
func (s *fastSide) Begin() (*fastpath.Slot, context.Context) {
	x := new(exchange)
	x.ctx = exchangeCtx{&x.fs.Ctx, x}
	x.dst = s.dst
	if pre := &s.pre; pre.filtered {
		// The hit attempt ran the route's request phase: carry its
		// outcome, and the state it routed with, to the general path.
		x.st, x.filtered, x.answeredBy, x.ans = pre.st, true, pre.by, pre.ans
		x.consumer = pre.consumer
		x.preRoute = pre.route
		*pre = fastPre{}
	}
	return &x.fs, &x.ctx
}
