package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zerohop/zerohop/proxy/internal/field"
)

// Discard is a round trip for a caller that wants nothing of the response
// but its status: a shadow copy (proxy/mirror.go). The request head comes
// already written out (AppendHead), so no http.Request is built; the
// response is read and dropped by its framing (RFC 9112 §6.3), so no
// http.Response or header map is built either. The connection comes from
// and goes back to the same pool as RoundTrip's.
//
// deadline bounds the whole exchange, dial included. A body longer than
// maxBody is not read: the connection is closed instead, as it is after a
// close-delimited body, a 101, or anything it cannot frame. method is the
// request's (a response to HEAD has no body). Like RoundTrip, a request
// on a reused connection that the server closed before answering anything
// is sent once more on a new one.
func (t *Transport) Discard(u *url.URL, method string, head []byte, deadline time.Time, maxBody int64) (status int, err error) {
	key, err := keyOf(u)
	if err != nil {
		return 0, err
	}
	for attempt := 0; ; attempt++ {
		c, err := t.discardConn(key, u, attempt > 0, deadline)
		if err != nil {
			return 0, err
		}
		status, reuse, nothing, err := c.discard(method, head, deadline, maxBody)
		if err == nil {
			if reuse {
				c.nc.SetDeadline(time.Time{})
			}
			c.release(reuse)
			return status, nil
		}
		c.close()
		if !nothing || attempt > 0 || !c.reused || !time.Now().Before(deadline) {
			return 0, err
		}
	}
}

// discardConn is getConn for Discard: the dial gets the deadline.
func (t *Transport) discardConn(key connKey, u *url.URL, fresh bool, deadline time.Time) (*conn, error) {
	var c *conn
	if !fresh {
		c, _ = t.getIdle(key)
	}
	ctx := context.Background()
	if c == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
		var err error
		if c, err = t.dial(ctx, key, u, nil); err != nil {
			return nil, err
		}
	}
	if t.checkConn != nil {
		if err := t.checkConn(ctx, c.nc, c.reused); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// Errors of Discard's own reading.
var (
	errDiscardHead = errors.New("h1: malformed response head")
	errDiscardBody = errors.New("h1: malformed chunked body")
	errBodyTooLong = errors.New("h1: response body longer than the discard limit")
)

// discard writes head and reads the response. It reports whether the
// connection may be reused, and, on error, whether nothing was read (the
// server closed an idle connection: the request may be sent again).
func (c *conn) discard(method string, head []byte, deadline time.Time, maxBody int64) (status int, reuse, nothing bool, err error) {
	c.nc.SetDeadline(deadline)
	w0 := c.nwritten
	c.bw.Write(head)
	if err := c.bw.Flush(); err != nil {
		return 0, false, c.nwritten == w0, fmt.Errorf("h1: writing request to %s: %w", c.key.addr, err)
	}
	r0 := c.nread
	for nInterim := 0; ; nInterim++ {
		c.limit = c.t.maxHeader
		f, err := c.discardHead()
		c.limit = math.MaxInt64
		if err != nil {
			if c.limitHit {
				err = fmt.Errorf("h1: %s: server response head exceeded %d bytes; aborted", c.key.addr, c.t.maxHeader)
			} else if errors.Is(err, io.EOF) && c.nread != r0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, false, c.nread == r0, fmt.Errorf("h1: reading response from %s: %w", c.key.addr, err)
		}
		switch {
		case f.status == http.StatusSwitchingProtocols:
			return f.status, false, false, nil // nothing asked for it: close
		case f.status < 200:
			if nInterim >= c.t.maxInterim {
				return 0, false, false, fmt.Errorf("%w: from %s", ErrTooManyInterim, c.key.addr)
			}
			continue
		}
		reuse = !f.close
		switch {
		case method == http.MethodHead || f.status == http.StatusNoContent || f.status == http.StatusNotModified:
		case f.chunked:
			err = c.discardChunked(maxBody)
		case f.length >= 0 && f.length <= maxBody:
			_, err = c.br.Discard(int(f.length))
		default: // too long, or read until close (RFC 9112 §6.3): close instead
			reuse = false
		}
		if err != nil {
			return 0, false, false, fmt.Errorf("h1: reading response body from %s: %w", c.key.addr, err)
		}
		return f.status, reuse, false, nil
	}
}

// framing is what discardHead keeps of a response head.
type framing struct {
	status  int
	length  int64 // Content-Length; -1: none
	chunked bool  // the last transfer coding is chunked
	close   bool  // Connection: close, or HTTP/1.0
}

// discardHead reads one response head from c.br and keeps its framing.
// What http.ReadResponse would refuse (a bad status line, a bad or
// conflicting Content-Length, obs-fold) is an error: the connection is
// then closed, which is all a discarded response needs.
func (c *conn) discardHead() (f framing, err error) {
	line, err := c.headLine()
	if err != nil {
		return f, err
	}
	// "HTTP/1.x DDD[ reason]"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return f, errDiscardHead
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return f, errDiscardHead
		}
		f.status = f.status*10 + int(d-'0')
	}
	if f.status < 100 {
		return f, errDiscardHead
	}
	f.length = -1
	f.close = line[7] == '0' // HTTP/1.0: no keep-alive assumed
	coded := false
	for {
		line, err := c.headLine()
		if err != nil {
			return f, err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return f, errDiscardHead // obs-fold
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return f, errDiscardHead
		}
		value = bytes.Trim(value, " \t")
		switch {
		case field.EqualFold(name, "Content-Length"):
			n := parseLength(value)
			if n < 0 || (f.length >= 0 && n != f.length) {
				return f, errDiscardHead
			}
			f.length = n
		case field.EqualFold(name, "Transfer-Encoding"):
			// The last coding decides (RFC 9112 §6.3): chunked, or the
			// body runs until the connection closes.
			coded = true
			last := value
			if i := bytes.LastIndexByte(value, ','); i >= 0 {
				last = bytes.Trim(value[i+1:], " \t")
			}
			f.chunked = field.EqualFold(last, "chunked")
		case field.EqualFold(name, "Connection"):
			f.close = f.close || hasCloseToken(value)
		}
	}
	if coded {
		f.length = -1 // Transfer-Encoding overrides Content-Length
	}
	return f, nil
}

// headLine is the next line of a head without its CRLF (or bare LF).
func (c *conn) headLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return nil, errDiscardHead
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// discardChunked reads a chunked body and its trailers and drops them.
func (c *conn) discardChunked(maxBody int64) error {
	var total int64
	for {
		line, err := c.headLine()
		if err != nil {
			return err
		}
		if i := bytes.IndexAny(line, "; \t"); i >= 0 {
			line = line[:i] // chunk extensions
		}
		if len(line) == 0 || len(line) > 15 {
			return errDiscardBody
		}
		var n int64
		for _, d := range line {
			switch {
			case d >= '0' && d <= '9':
				n = n<<4 | int64(d-'0')
			case d >= 'a' && d <= 'f':
				n = n<<4 | int64(d-'a'+10)
			case d >= 'A' && d <= 'F':
				n = n<<4 | int64(d-'A'+10)
			default:
				return errDiscardBody
			}
		}
		if n == 0 {
			break
		}
		if total += n; total > maxBody {
			return errBodyTooLong
		}
		if _, err := c.br.Discard(int(n)); err != nil {
			return err
		}
		if line, err := c.headLine(); err != nil {
			return err
		} else if len(line) != 0 {
			return errDiscardBody
		}
	}
	for { // trailer section, up to its empty line
		line, err := c.headLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
}

// AppendHead appends to dst the head of a bodiless HTTP/1.1 request for
// Discard: the request line (path, and "?" and query if query is not
// empty; "/" for an empty path), Host, and h's fields except Host,
// Content-Length, Transfer-Encoding, Trailer, those named in skip
// (canonical names) and those the Connection field names. It reports
// false when the method, target, host or a field could not be sent as is
// (checkRequest's and writeQuick's checks); dst is then to be dropped.
func AppendHead(dst []byte, method, path, query, host string, h http.Header, skip []string) ([]byte, bool) {
	if path == "" {
		path = "/"
	}
	if !validToken(method) || !validTarget(path) || !validTarget(query) || !validValue(host) {
		return dst, false
	}
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, path...)
	if query != "" {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)
	conn := h["Connection"]
fields:
	for k, vv := range h {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, s := range skip {
			if k == s {
				continue fields
			}
		}
		for _, v := range conn {
			if listsToken(v, k) {
				continue fields
			}
		}
		if !validToken(k) {
			return dst, false
		}
		for _, v := range vv {
			if !validValue(v) {
				return dst, false
			}
			dst = append(dst, k...)
			dst = append(dst, ": "...)
			dst = append(dst, trimValue(v)...)
			dst = append(dst, "\r\n"...)
		}
	}
	return append(dst, "\r\n"...), true
}

// listsToken reports whether the comma-separated list v has the token t
// (case-insensitive).
func listsToken(v, t string) bool {
	for v != "" {
		var f string
		f, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.Trim(f, " \t"), t) {
			return true
		}
	}
	return false
}

// validTarget reports whether s may be part of a request target as is: no
// control characters or spaces.
func validTarget(s string) bool {
	return !containsCTL(s) && strings.IndexByte(s, ' ') < 0
}
