package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerohop/zerohop/config"
)

// tunnel serves CONNECT for forward-proxy listeners: HTTPS from the app
// goes through untouched and uncached (RFC 9110 §9.3.6), to destinations
// the listener's guard allows, until both sides close or no byte has
// moved for the listener's forward.tunnel_idle_timeout.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request, x *exchange) {
	x.status.Fwd, x.status.Detail = "bypass", "connect"
	x.host, x.target = r.Host, r.Host
	if _, port, err := net.SplitHostPort(r.Host); err != nil || port == "" {
		p.fail(w, x, http.StatusBadRequest, "CONNECT needs host:port")
		return
	}
	g := x.guard
	if g == nil {
		g = p.guardFor(config.Listener{})
	}
	if ref := g.decideHost(x.st.egress, r.Host, 0, "https", http.MethodConnect); ref != nil {
		p.refuse(w, x, ref)
		return
	}
	x.upstream = r.Host
	up, err := g.dialer.DialContext(&x.ctx, "tcp", r.Host) // x.ctx: the dial check sees x
	if err == nil {
		if err = g.checkConn(&x.ctx, up, false); err != nil { // the final decision, audited
			up.Close()
		}
	}
	if err != nil {
		if ref := (*refusal)(nil); errors.As(err, &ref) {
			p.refuse(w, x, ref) // the name resolved to a refused address
			return
		}
		p.m.upstreamErrors.WithLabelValues("connect").Inc()
		p.fail(w, x, http.StatusBadGateway, "CONNECT: cannot reach "+r.Host)
		return
	}
	defer up.Close()
	var iw *idleWatch
	if d := g.cfg.TunnelIdleTimeout; d > 0 {
		iw = newIdleWatch(d, func() {
			p.m.tunnelIdle.Inc()
			p.log.Debug("CONNECT tunnel idle: closing", "request_id", x.reqID, "upstream", r.Host, "idle_timeout", d)
		})
		defer iw.stop()
		iw.closeOnIdle(up)
		if r.ProtoMajor != 1 {
			iw.closeOnIdle(r.Body)
		}
	}
	if r.ProtoMajor == 1 {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			p.fail(w, x, http.StatusInternalServerError, "CONNECT: cannot take over the connection")
			return
		}
		defer conn.Close()
		if iw != nil {
			iw.closeOnIdle(conn)
		}
		if rec, ok := w.(*recorder); ok {
			rec.code = http.StatusOK
		}
		conn.SetDeadline(time.Time{})
		if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
			return
		}
		// Bytes the client sent after its request head are already buffered.
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			up.Write(b)
		}
		splice(conn, up, iw)
		return
	}
	// HTTP/2 CONNECT: the stream is the tunnel.
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyTunnel(up, r.Body, iw)
		if c, ok := up.(*net.TCPConn); ok {
			c.CloseWrite()
		}
	}()
	copyTunnel(flushWriter{w}, up, iw)
	wg.Wait()
}

// splice copies both ways until both directions end.
func splice(a, b net.Conn, iw *idleWatch) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		copyTunnel(dst, src, iw)
		if c, ok := dst.(interface{ CloseWrite() error }); ok {
			c.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// tunnelBufs are the buffers of tunnels with an idle timeout.
var tunnelBufs = newBufferPool()

// copyTunnel copies src to dst, telling iw (if any) of every byte moved.
func copyTunnel(dst io.Writer, src io.Reader, iw *idleWatch) {
	if iw == nil {
		io.Copy(dst, src) // may splice(2) between the sockets
		return
	}
	buf := tunnelBufs.Get()
	defer tunnelBufs.Put(buf)
	io.CopyBuffer(writerOnly{dst}, activityReader{src, iw}, buf)
}

// writerOnly hides dst's ReadFrom, so that CopyBuffer reads through the
// activityReader into the pooled buffer.
type writerOnly struct{ io.Writer }

type activityReader struct {
	r  io.Reader
	iw *idleWatch
}

func (a activityReader) Read(b []byte) (int, error) {
	n, err := a.r.Read(b)
	if n > 0 {
		a.iw.touch()
	}
	return n, err
}

// idleWatch closes a tunnel once no byte has moved for d: one timer per
// tunnel, re-armed for the remainder when it fires early, rather than a
// deadline reset on every read.
type idleWatch struct {
	d      time.Duration
	last   atomic.Int64 // UnixNano of the last byte moved
	t      *time.Timer
	onIdle func()

	mu      sync.Mutex
	done    bool
	closers []io.Closer
}

func newIdleWatch(d time.Duration, onIdle func()) *idleWatch {
	w := &idleWatch{d: d, onIdle: onIdle}
	w.last.Store(time.Now().UnixNano())
	w.t = time.AfterFunc(d, w.check)
	return w
}

// closeOnIdle registers c to be closed when the tunnel goes idle.
func (w *idleWatch) closeOnIdle(c io.Closer) {
	w.mu.Lock()
	w.closers = append(w.closers, c)
	w.mu.Unlock()
}

func (w *idleWatch) touch() { w.last.Store(time.Now().UnixNano()) }

func (w *idleWatch) check() {
	idle := time.Duration(time.Now().UnixNano() - w.last.Load())
	if idle < w.d {
		w.t.Reset(w.d - idle)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	w.onIdle()
	for _, c := range w.closers {
		c.Close()
	}
}

// stop ends the watch when the tunnel is over.
func (w *idleWatch) stop() {
	w.t.Stop()
	w.mu.Lock()
	w.done = true
	w.closers = nil
	w.mu.Unlock()
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	http.NewResponseController(f.w).Flush()
	return n, err
}
