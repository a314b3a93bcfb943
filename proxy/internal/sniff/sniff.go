// Package sniff tells, from the first bytes a client sent, what protocol
// an intercepted connection speaks: an HTTP/1.x request (or h2c's
// preface), a TLS ClientHello (whose server name it reads), or something
// else, passed through untouched.
package sniff

import (
	"encoding/binary"
	"errors"
)

// Kind is what a connection's first bytes look like.
type Kind uint8

const (
	NeedMore Kind = iota // too few bytes to tell
	HTTP                 // an HTTP/1.x request line (or the h2c preface)
	TLS                  // a TLS handshake record
	Other                // anything else
)

func (k Kind) String() string {
	switch k {
	case HTTP:
		return "http"
	case TLS:
		return "tls"
	case Other:
		return "other"
	}
	return "need-more"
}

// maxMethod bounds the method token of a request line: the longest
// registered method (UPDATEREDIRECTREF) has 17 characters.
const maxMethod = 20

// Classify looks at b, the bytes received so far.
func Classify(b []byte) Kind {
	if len(b) == 0 {
		return NeedMore
	}
	if b[0] == 0x16 { // TLS handshake record: 0x16, version 0x03 0x0x
		if len(b) < 3 {
			return NeedMore
		}
		if b[1] == 3 && b[2] <= 4 {
			return TLS
		}
		return Other
	}
	// A request line: a method token of upper-case letters (the methods
	// clients send are all upper case; a lower-case token is not worth
	// the false positives), one space, then a target.
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z' || c == '-' || c == '_':
			if i >= maxMethod {
				return Other
			}
		case c == ' ' && i > 0:
			if i+1 >= len(b) {
				return NeedMore
			}
			switch b[i+1] {
			case '/', '*', 'h', 'H': // origin, asterisk (OPTIONS, h2c's PRI) or absolute form
				return HTTP
			}
			// authority form (CONNECT host:port)
			if string(b[:i]) == "CONNECT" {
				return HTTP
			}
			return Other
		default:
			return Other
		}
	}
	return NeedMore
}

// Errors of ServerName.
var (
	ErrShort    = errors.New("sniff: incomplete ClientHello")
	ErrNotHello = errors.New("sniff: not a TLS ClientHello")
)

// RecordLen returns the length of the TLS record that b starts with,
// header included, or 0 if b is shorter than a record header.
func RecordLen(b []byte) int {
	if len(b) < 5 {
		return 0
	}
	return 5 + int(binary.BigEndian.Uint16(b[3:5]))
}

// ServerName returns the server_name (SNI, RFC 6066 §3) of the
// ClientHello in the TLS record at the start of b, or "" when it has
// none. It reads only the first record: a ClientHello split over records
// (legal, rare) gives ErrShort. It never reads past b.
func ServerName(b []byte) (string, error) {
	n := RecordLen(b)
	if n == 0 || len(b) < n {
		return "", ErrShort
	}
	if b[0] != 0x16 {
		return "", ErrNotHello
	}
	r := reader(b[5:n])
	typ, ok := r.u8()
	if !ok || typ != 1 { // client_hello
		return "", ErrNotHello
	}
	hlen, ok := r.u24()
	if !ok {
		return "", ErrShort
	}
	if hlen > len(r) {
		return "", ErrShort // continued in the next record
	}
	r = r[:hlen]
	if !r.skip(2 + 32) { // legacy_version, random
		return "", ErrNotHello
	}
	if !r.skipVec8() || !r.skipVec16() || !r.skipVec8() { // session id, cipher suites, compression
		return "", ErrNotHello
	}
	if len(r) == 0 {
		return "", nil // no extensions
	}
	exts, ok := r.vec16()
	if !ok {
		return "", ErrNotHello
	}
	for len(exts) > 0 {
		typ, ok1 := exts.u16()
		body, ok2 := exts.vec16()
		if !ok1 || !ok2 {
			return "", ErrNotHello
		}
		if typ != 0 { // server_name
			continue
		}
		list, ok := body.vec16()
		if !ok {
			return "", ErrNotHello
		}
		for len(list) > 0 {
			nt, ok1 := list.u8()
			name, ok2 := list.vec16()
			if !ok1 || !ok2 {
				return "", ErrNotHello
			}
			if nt == 0 { // host_name
				return string(name), nil
			}
		}
		return "", nil
	}
	return "", nil
}

// reader reads big-endian fields from the front of a byte slice.
type reader []byte

func (r *reader) u8() (int, bool) {
	if len(*r) < 1 {
		return 0, false
	}
	v := (*r)[0]
	*r = (*r)[1:]
	return int(v), true
}

func (r *reader) u16() (int, bool) {
	if len(*r) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*r)
	*r = (*r)[2:]
	return int(v), true
}

func (r *reader) u24() (int, bool) {
	if len(*r) < 3 {
		return 0, false
	}
	v := int((*r)[0])<<16 | int((*r)[1])<<8 | int((*r)[2])
	*r = (*r)[3:]
	return v, true
}

func (r *reader) skip(n int) bool {
	if len(*r) < n {
		return false
	}
	*r = (*r)[n:]
	return true
}

func (r *reader) vec16() (reader, bool) {
	n, ok := r.u16()
	if !ok || len(*r) < n {
		return nil, false
	}
	v := (*r)[:n]
	*r = (*r)[n:]
	return v, true
}

func (r *reader) skipVec8() bool {
	n, ok := r.u8()
	return ok && r.skip(n)
}

func (r *reader) skipVec16() bool {
	_, ok := r.vec16()
	return ok
}
