package httpcache

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zerohop/zerohop/proxy/internal/field"
)

// DefaultCacheID is the cache identifier used when CacheStatus.Cache is
// empty.
const DefaultCacheID = "zerohop"

// Fwd is the value of the Cache-Status fwd parameter: why the request was
// forwarded towards the origin (RFC 9211 §2.2).
type Fwd string

// The fwd values defined by RFC 9211 §2.2.
const (
	FwdBypass   Fwd = "bypass"    // configured to bypass the cache
	FwdMethod   Fwd = "method"    // the request method is not cacheable
	FwdURIMiss  Fwd = "uri-miss"  // nothing stored for the URI
	FwdVaryMiss Fwd = "vary-miss" // stored responses, none matching the Vary selecting fields
	FwdMiss     Fwd = "miss"      // a miss the cache cannot classify further
	FwdRequest  Fwd = "request"   // the request's directives required forwarding (e.g. no-cache)
	FwdStale    Fwd = "stale"     // the stored response was stale
	FwdPartial  Fwd = "partial"   // only part of the response was stored
)

// CacheStatus is one member of the Cache-Status field (RFC 9211 §2).
type CacheStatus struct {
	// Cache identifies the cache; DefaultCacheID when empty. It is sent as
	// a Token when it is one, else as a String.
	Cache string
	// Hit: the response was served from the cache without contacting the
	// origin (RFC 9211 §2.1). When Hit is true, Fwd, FwdStatus, Stored and
	// Collapsed are not sent, since they describe a forwarded request.
	Hit bool
	// Fwd is why the request was forwarded (RFC 9211 §2.2).
	Fwd Fwd
	// FwdStatus is the status code of the forwarded response, sent when
	// positive and Fwd is set (RFC 9211 §2.3).
	FwdStatus int
	// TTL is the remaining freshness lifetime (Entry.TTL), sent in whole
	// seconds, rounded down, when HasTTL is set; negative when stale
	// (RFC 9211 §2.4).
	TTL    time.Duration
	HasTTL bool
	// Stored: the forwarded response was stored (RFC 9211 §2.5).
	Stored bool
	// Collapsed: the forwarded request was collapsed with others (RFC 9211 §2.6).
	Collapsed bool
	// Key is the cache key, sent as a String (RFC 9211 §2.7).
	Key string
	// Detail is extra information, e.g. a Reason (RFC 9211 §2.8). It is sent
	// as a Token when it is one, else as a String.
	Detail string
}

// String serialises the member as an RFC 8941 List member with
// parameters, in the order of RFC 9211 §2, e.g. `zerohop; hit; ttl=30` or
// `zerohop; fwd=stale; fwd-status=304`. Bytes that a Structured Field
// String cannot carry (controls and non-ASCII) are percent-encoded.
func (cs CacheStatus) String() string {
	var b strings.Builder
	b.Grow(96)
	id := cs.Cache
	if id == "" {
		id = DefaultCacheID
	}
	writeTokenOrString(&b, id)
	if cs.Hit {
		b.WriteString("; hit")
	} else if cs.Fwd != "" {
		b.WriteString("; fwd=")
		writeTokenOrString(&b, string(cs.Fwd))
		if cs.FwdStatus > 0 {
			b.WriteString("; fwd-status=")
			writeInt(&b, int64(cs.FwdStatus))
		}
	}
	if cs.HasTTL {
		b.WriteString("; ttl=")
		writeInt(&b, floorSeconds(cs.TTL))
	}
	if !cs.Hit && cs.Fwd != "" {
		if cs.Stored {
			b.WriteString("; stored")
		}
		if cs.Collapsed {
			b.WriteString("; collapsed")
		}
	}
	if cs.Key != "" {
		b.WriteString("; key=")
		writeSFString(&b, cs.Key)
	}
	if cs.Detail != "" {
		b.WriteString("; detail=")
		writeTokenOrString(&b, cs.Detail)
	}
	return b.String()
}

func writeInt(b *strings.Builder, n int64) {
	var buf [20]byte
	b.Write(strconv.AppendInt(buf[:0], n, 10))
}

func floorSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d < 0 && d%time.Second != 0 {
		s--
	}
	return s
}

// AppendCacheStatus appends cs to the Cache-Status field of h. Each cache
// appends its member to the end of the list, so that the last member is the
// cache closest to the user (RFC 9211 §2). Existing field lines are joined
// into one so that a recipient reading only the first line sees the whole
// list.
func AppendCacheStatus(h http.Header, cs CacheStatus) {
	if len(h["Cache-Status"]) == 0 {
		h["Cache-Status"] = []string{cs.String()}
		return
	}
	var members []string
	for _, line := range h["Cache-Status"] {
		if line = strings.Trim(line, " \t,"); line != "" {
			members = append(members, line)
		}
	}
	members = append(members, cs.String())
	h["Cache-Status"] = []string{strings.Join(members, ", ")}
}

// isSFToken reports whether s is an RFC 8941 Token:
// ( ALPHA / "*" ) *( tchar / ":" / "/" ).
func isSFToken(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !field.IsToken(c) && c != ':' && c != '/' {
			return false
		}
	}
	return true
}

func writeTokenOrString(b *strings.Builder, s string) {
	if isSFToken(s) {
		b.WriteString(s)
		return
	}
	writeSFString(b, s)
}

// writeSFString writes an RFC 8941 String: printable ASCII, with '"' and
// '\' escaped. Other bytes cannot be represented and are percent-encoded.
func writeSFString(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
