package h1

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"slices"
	"testing"
)

func gzipped(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	io.WriteString(w, s)
	w.Close()
	return b.Bytes()
}

func zlibbed(s string) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	io.WriteString(w, s)
	w.Close()
	return b.Bytes()
}

func chunked(b []byte) []byte {
	var out bytes.Buffer
	w := httputil.NewChunkedWriter(&out)
	w.Write(b[:len(b)/2])
	w.Write(b[len(b)/2:])
	w.Close()
	out.WriteString("\r\n")
	return out.Bytes()
}

// TestUnknownTransferCoding answers with transfer codings net/http's
// client refuses: the response is framed as RFC 9112 §6.3 says (chunked
// when chunked is last, else until the server closes), the codings this
// package knows are decoded, the others relayed, the codings reported in
// Response.TransferEncoding, and the connection never reused.
func TestUnknownTransferCoding(t *testing.T) {
	const text = "the content, whole"
	for _, tt := range []struct {
		name, te string
		body     []byte
		want     string
		codings  []string
	}{
		{"unknown, read to close", "foo", []byte("raw bytes until close"), "raw bytes until close", []string{"foo"}},
		{"gzip, read to close", "gzip", gzipped(text), text, []string{"gzip"}},
		{"gzip then chunked", "gzip, chunked", chunked(gzipped(text)), text, []string{"gzip", "chunked"}},
		{"deflate then chunked", "deflate, chunked", chunked(zlibbed(text)), text, []string{"deflate", "chunked"}},
		{"unknown then chunked", "foo, chunked", chunked([]byte("foo-coded")), "foo-coded", []string{"foo", "chunked"}},
		{"unknown and gzip, to close", "gzip, foo", []byte("opaque"), "opaque", []string{"gzip", "foo"}},
		{"chunked not last", "chunked, foo", []byte("3\r\nabc\r\n0\r\n\r\n"), "3\r\nabc\r\n0\r\n\r\n", []string{"chunked", "foo"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				if _, ok := readRequest(br); !ok {
					return
				}
				// Content-Length alongside: Transfer-Encoding overrides it.
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: %s\r\nX-A: b\r\n\r\n", tt.te)
				c.Write(tt.body)
				if !bytes.HasSuffix(tt.body, []byte("\r\n\r\n")) || tt.te == "chunked, foo" {
					return // close: the end of a read-to-close body
				}
				io.Copy(io.Discard, br) // a chunked body: the client closes
			})
			tr := newTransport(t, Options{})
			resp, body := get(t, tr, srv.URL())
			if resp.StatusCode != 200 || body != tt.want {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, tt.want)
			}
			if !slices.Equal(resp.TransferEncoding, tt.codings) {
				t.Errorf("TransferEncoding %q, want %q", resp.TransferEncoding, tt.codings)
			}
			if resp.Header.Get("Transfer-Encoding") != "" || resp.Header.Get("Content-Length") != "" || resp.Header.Get("X-A") != "b" {
				t.Errorf("header %v: want the framing fields gone, the others kept", resp.Header)
			}
			// A second request needs a new connection.
			get(t, tr, srv.URL())
			if n := srv.conns.Load(); n != 2 {
				t.Errorf("%d connections for two requests; want 2 (never reused)", n)
			}
		})
	}
}

// TestCodedHeadAndNoContent: a response that has no content whatever its
// fields say (HEAD, 204, 304) is not read until close.
func TestCodedHeadAndNoContent(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, ok := readRequest(br)
			if !ok {
				return
			}
			code := 204
			if req.Method == "HEAD" {
				code = 200
			}
			fmt.Fprintf(c, "HTTP/1.1 %d X\r\nTransfer-Encoding: foo\r\n\r\n", code)
		}
	})
	tr := newTransport(t, Options{})
	for _, m := range []string{"HEAD", "GET"} {
		resp, body := do(t, tr, mustRequest(t, t.Context(), m, srv.URL(), nil))
		if body != "" || (m == "GET") != (resp.StatusCode == 204) {
			t.Errorf("%s: %d %q", m, resp.StatusCode, body)
		}
	}
}

// TestBareLFHeadDoesNotWait: looking for a transfer coding must not wait
// for bytes after a head whose lines end in a bare LF (a 204 on a kept
// connection has nothing after it).
func TestBareLFHeadDoesNotWait(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readRequest(br); !ok {
				return
			}
			io.WriteString(c, "HTTP/1.1 204 No Content\nX-A: b\n\n")
		}
	})
	tr := newTransport(t, Options{})
	within(t, wait, "a bare-LF 204", func() {
		resp, _ := get(t, tr, srv.URL())
		if resp.StatusCode != 204 || resp.Header.Get("X-A") != "b" {
			t.Errorf("got %d %v", resp.StatusCode, resp.Header)
		}
	})
}

func TestHeadEnd(t *testing.T) {
	for in, want := range map[string]int{
		"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody": 25,
		"HTTP/1.1 200 OK\nA: b\n\nbody":       22,
		"HTTP/1.1 200 OK\nA: b\r\n\r\n":       24,
		"HTTP/1.1 200 OK\r\nA: b\r\n":         0,
	} {
		if got := headEnd([]byte(in)); got != want {
			t.Errorf("headEnd(%q) = %d, want %d", in, got, want)
		}
	}
}
