package proxy

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// tunnel serves CONNECT for forward-proxy listeners: HTTPS from the app
// goes through untouched and uncached (RFC 9110 §9.3.6).
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request, x *exchange) {
	x.status.Fwd, x.status.Detail = "bypass", "connect"
	x.host, x.target = r.Host, r.Host
	if _, port, err := net.SplitHostPort(r.Host); err != nil || port == "" {
		p.fail(w, x, http.StatusBadRequest, "CONNECT needs host:port")
		return
	}
	x.upstream = r.Host
	up, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(r.Context(), "tcp", r.Host)
	if err != nil {
		p.m.upstreamErrors.WithLabelValues("connect").Inc()
		p.fail(w, x, http.StatusBadGateway, "CONNECT: cannot reach "+r.Host)
		return
	}
	defer up.Close()
	if r.ProtoMajor == 1 {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			p.fail(w, x, http.StatusInternalServerError, "CONNECT: cannot take over the connection")
			return
		}
		defer conn.Close()
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
		splice(conn, up)
		return
	}
	// HTTP/2 CONNECT: the stream is the tunnel.
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(up, r.Body)
		if c, ok := up.(*net.TCPConn); ok {
			c.CloseWrite()
		}
	}()
	io.Copy(flushWriter{w}, up)
	wg.Wait()
}

// splice copies both ways until both directions end.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
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

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	http.NewResponseController(f.w).Flush()
	return n, err
}
