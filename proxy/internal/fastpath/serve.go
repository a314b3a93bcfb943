package fastpath

import (
	"bufio"
	"fmt"
	"net/http"
	"net/textproto"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/zerohop/zerohop/proxy/internal/field"
)

// serve answers the request parsed into c.head (a headFast verdict) and
// consumes it. It returns false when the connection has been closed.
func (c *fastConn) serve() bool {
	c.mu.Lock()
	if c.closed || c.closeWait {
		c.mu.Unlock()
		c.closeNow()
		return false
	}
	c.serving = true
	c.mu.Unlock()
	inflight := c.fl.o.Inflight
	inflight.Add(1)

	served, keep := c.h.ServeFast()
	if !served {
		keep = c.serveOne()
	}
	c.r += c.head.n

	c.mu.Lock()
	c.serving = false
	closeNow := c.closeWait || !keep
	c.mu.Unlock()
	inflight.Add(-1)
	if closeNow {
		c.closeNow()
		return false
	}
	return true
}

// draining reports whether the server asked to close the connection.
func (c *fastConn) draining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeWait || c.fl.closing.Load()
}

// closeNow closes the connection from the fast path's side.
func (c *fastConn) closeNow() {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if !already {
		c.fl.forget(c)
		c.wake()
		c.Conn.Close()
	}
}

// remoteAddr is the app's address as a string, made once per connection.
func (c *fastConn) remoteAddr() string {
	if c.remote == "" {
		c.remote = c.Conn.RemoteAddr().String()
	}
	return c.remote
}

// serveOne runs the listener's handler for the request in c.head, as
// net/http would: the same http.Request, the same response framing. It
// reports whether the connection stays open.
func (c *fastConn) serveOne() (keep bool) {
	h := &c.head
	// The slot comes with the pipeline's request state, and the context
	// already carries that: the handler then need not copy the request.
	slot, ctx := c.h.Begin()
	slot.Ctx.Init(c.ctx)
	req, ok := buildRequest(ctx, h, &slot.URL, c.header(hdrRequest))
	if !ok || !httpguts.ValidHostHeader(string(h.host)) {
		// The parser accepted what net/http's does not: answer as the
		// server would, and close.
		slot.Ctx.End()
		c.writeBadRequest()
		return false
	}
	req.RemoteAddr = c.remoteAddr()

	c.writer()
	w := &slot.W
	*w = Writer{c: c, req: req, hdr: c.header(hdrResponse), cl: -1, isHEAD: req.Method == http.MethodHead}
	slot.UpstreamHeader = c.header(hdrUpstream)
	w.closeAfter = h.connClose
	defer slot.Ctx.End()
	defer func() {
		if v := recover(); v != nil {
			keep = false
			if v != http.ErrAbortHandler {
				buf := make([]byte, 16<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.fl.o.Logger.Error("panic serving request", "remote", req.RemoteAddr, "panic", fmt.Sprint(v), "stack", string(buf))
			}
			c.bw.Reset(c.Conn) // drop a half-written response
		}
	}()
	c.h.ServeHTTP(w, req)
	if !w.finish() {
		return false
	}
	return !w.closeAfter
}

// The header maps a fast-path connection reuses from request to request.
const (
	hdrRequest  = iota // the request's
	hdrResponse        // the response writer's
	hdrUpstream        // the direct forwarder's upstream request's
	numHdrs
)

// maxReusedFields is the most fields a reused header map may have held:
// clear costs a map's capacity, which never shrinks.
const maxReusedFields = 16

// header returns the connection's header map i, empty. The maps of one
// request are reused by the next on the connection, so a request makes
// none (a new map's first insert allocates its table) and touches memory
// that is still in cache. Nothing keeps a request's maps past its
// handler: the access log and metrics are written before it returns, and
// a background refresh works on a clone of the request.
func (c *fastConn) header(i int) http.Header {
	h := c.hdrs[i]
	if h == nil || len(h) > maxReusedFields {
		h = make(http.Header, 8)
		c.hdrs[i] = h
		return h
	}
	clear(h)
	return h
}

// writeBadRequest answers a request that cannot be served, as net/http
// does, on a connection about to close.
func (c *fastConn) writeBadRequest() {
	const msg = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"
	c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.Conn.Write([]byte(msg))
}

// Writer is the http.ResponseWriter of a request served by the fast
// path. It frames the response as net/http's server does (see
// chunkWriter.writeHeader there): Content-Length when known or when the
// handler finishes within the first 2 KiB, chunked otherwise; Date and a
// sniffed Content-Type when missing; 1xx interim responses; trailers.
type Writer struct {
	c      *fastConn
	req    *http.Request
	hdr    http.Header
	isHEAD bool

	code        int
	wroteHeader bool        // the final status is set
	snap        http.Header // the header as of WriteHeader, when it is not sent at once
	sent        bool        // status line and header are in the buffer
	chunked     bool
	cl          int64 // declared Content-Length, -1 if none
	written     int64
	pending     []byte // body held until the framing is decided
	trailers    []string
	closeAfter  bool
	handlerDone bool
	werr        error
}

// bufferBeforeChunking is how much body net/http holds back to compute a
// Content-Length before falling back to chunked encoding.
const bufferBeforeChunking = 2048

func (w *Writer) Header() http.Header { return w.hdr }

func (w *Writer) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// An interim response goes out at once.
		bw := w.c.bw
		writeStatus(bw, code)
		writeFields(bw, w.hdr, excludedNoBody)
		bw.WriteString("\r\n")
		w.setErr(bw.Flush())
		return
	}
	w.wroteHeader, w.code = true, code
	if cl := w.hdr.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.cl = v
		} else {
			w.hdr.Del("Content-Length")
		}
	}
	if !bodyAllowed(code) || w.cl >= 0 && !w.sniffs() {
		// The framing is known and nothing waits for the body: send the
		// header now, as it is.
		w.sendHeader(nil)
		if !bodyAllowed(code) {
			w.setErr(w.c.bw.Flush()) // complete: a status without a body
		} else {
			w.flushIfComplete()
		}
		return
	}
	w.snap = w.hdr.Clone()
}

// sniffs reports whether net/http would sniff a Content-Type from the body.
func (w *Writer) sniffs() bool {
	_, haveType := w.hdr["Content-Type"]
	return !haveType && w.hdr.Get("Content-Encoding") == "" && w.cl != 0
}

func (w *Writer) setErr(err error) {
	if err != nil && w.werr == nil {
		w.werr = err
	}
}

func (w *Writer) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.code) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.cl >= 0 && w.written > w.cl {
		return 0, http.ErrContentLength
	}
	if w.werr != nil {
		return 0, w.werr
	}
	if !w.sent {
		if len(w.pending)+len(p) <= bufferBeforeChunking {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.sendHeader(append(w.pending, p...))
		w.flushIfComplete()
		return len(p), w.werr
	}
	w.writeBody(p)
	w.flushIfComplete()
	return len(p), w.werr
}

// flushIfComplete sends the response to the app as soon as its declared
// body is written, rather than when the handler returns: what the proxy
// does after the upstream's last byte (metrics, the access log, releasing
// the exchange) is then off the app's latency. finish's flush then has
// nothing to write.
func (w *Writer) flushIfComplete() {
	if w.sent && !w.chunked && w.cl >= 0 && w.written == w.cl {
		w.setErr(w.c.bw.Flush())
	}
}

func (w *Writer) writeBody(p []byte) {
	if w.isHEAD || len(p) == 0 {
		return
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		w.setErr(err)
		return
	}
	_, err := bw.Write(p)
	w.setErr(err)
}

// sendHeader decides the framing, writes the status line and header, and
// then body, the first bytes of the body (which may be sniffed).
func (w *Writer) sendHeader(body []byte) {
	if w.sent {
		w.writeBody(body)
		return
	}
	w.sent = true
	header := w.hdr
	if w.snap != nil {
		header = w.snap
	}
	var excludeBuf [8]string
	exclude := excludeBuf[:0]
	del := func(k string) {
		if _, ok := header[k]; ok && !slices.Contains(exclude, k) {
			exclude = append(exclude, k)
		}
	}
	hasTrailers := false
	for k := range header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			del(k)
			hasTrailers = true
		}
	}
	for _, v := range header["Trailer"] {
		hasTrailers = true
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(f))
			}
		}
	}
	te := header.Get("Transfer-Encoding")
	hasTE := te != ""
	var extraBuf [8]string
	extra := extraBuf[:0] // name, value pairs
	code := w.code
	if w.handlerDone && !hasTrailers && !hasTE && bodyAllowed(code) && w.cl < 0 && (!w.isHEAD || len(body) > 0) {
		w.cl = int64(len(body))
		extra = append(extra, "Content-Length", strconv.Itoa(len(body)))
	}
	if header.Get("Connection") == "close" || w.c.draining() {
		w.closeAfter = true
	}
	if bodyAllowed(code) {
		_, haveType := header["Content-Type"]
		if header.Get("Content-Encoding") == "" && !haveType && !hasTE && len(body) > 0 {
			extra = append(extra, "Content-Type", http.DetectContentType(body))
		}
	} else {
		del("Content-Length")
		del("Transfer-Encoding")
		if code == http.StatusNotModified {
			del("Content-Type")
		}
	}
	if _, ok := header["Date"]; !ok {
		extra = append(extra, "Date", time.Now().UTC().Format(http.TimeFormat))
	}
	hasCL := w.cl >= 0
	if hasCL && hasTE && te != "identity" {
		del("Content-Length")
		hasCL = false
	}
	switch {
	case w.isHEAD || !bodyAllowed(code):
		del("Transfer-Encoding")
	case hasCL:
		del("Transfer-Encoding")
	case hasTE && te == "identity":
		w.closeAfter = true
		del("Transfer-Encoding")
	default:
		w.chunked = true
		del("Transfer-Encoding")
		extra = append(extra, "Transfer-Encoding", "chunked")
	}
	if w.chunked {
		del("Content-Length")
	}
	if w.closeAfter && !field.HasToken([]byte(header.Get("Connection")), "close") {
		del("Connection")
		extra = append(extra, "Connection", "close")
	}
	bw := w.c.bw
	writeStatus(bw, code)
	writeFields(bw, header, exclude)
	for i := 0; i < len(extra); i += 2 {
		bw.WriteString(extra[i])
		bw.WriteString(": ")
		bw.WriteString(extra[i+1])
		bw.WriteString("\r\n")
	}
	_, err := bw.WriteString("\r\n")
	w.setErr(err)
	w.writeBody(body)
}

// Flush sends what is buffered (http.Flusher), committing to chunked
// encoding when no length is known.
func (w *Writer) Flush() { w.FlushError() }

// FlushError is Flush for http.ResponseController.
func (w *Writer) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		b := w.pending
		w.pending = nil
		w.sendHeader(b)
	}
	w.setErr(w.c.bw.Flush())
	return w.werr
}

// finish completes the response after the handler returned. It reports
// false when the connection must close (a write failed).
func (w *Writer) finish() bool {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		b := w.pending
		w.pending = nil
		w.sendHeader(b)
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		for _, k := range w.trailers {
			for _, v := range w.hdr[k] {
				writeField(bw, k, v)
			}
		}
		for k, vv := range w.hdr {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				for _, v := range vv {
					writeField(bw, name, v)
				}
			}
		}
		bw.WriteString("\r\n")
	}
	w.setErr(bw.Flush())
	if w.werr != nil {
		return false
	}
	if bodyAllowed(w.code) && !w.isHEAD && w.cl >= 0 && w.written != w.cl {
		return false // short body: the client cannot find the next response
	}
	return true
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(headerValueReplacer.Replace(v))
	bw.WriteString("\r\n")
}

var headerValueReplacer = strings.NewReplacer("\n", " ", "\r", " ")

var excludedNoBody = []string{"Content-Length", "Transfer-Encoding"}

// writeFields writes the fields of h except those named in exclude as
// http.Header.WriteSubset does (sorted by name, invalid names dropped, CR
// and LF in values turned to spaces, values trimmed), without its pooled
// sorter, exclusion map and per-value replacer.
func writeFields(bw *bufio.Writer, h http.Header, exclude []string) {
	var stack [32]string
	keys := stack[:0]
	for k := range h {
		if !slices.Contains(exclude, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range h[k] {
			if strings.ContainsAny(v, "\r\n") {
				v = newlineToSpace.Replace(v)
			}
			v = textproto.TrimString(v)
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

func writeStatus(bw *bufio.Writer, code int) {
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		bw.WriteString(text)
	} else {
		bw.WriteString("status code ")
		bw.WriteString(strconv.Itoa(code))
	}
	bw.WriteString("\r\n")
}

func bodyAllowed(code int) bool {
	return !(code >= 100 && code <= 199 || code == http.StatusNoContent || code == http.StatusNotModified)
}

// WriteStatus writes the status line of a response with code, as
// net/http's server does.
func WriteStatus(bw *bufio.Writer, code int) { writeStatus(bw, code) }

// BodyAllowed reports whether a response with code may have a body.
func BodyAllowed(code int) bool { return bodyAllowed(code) }
