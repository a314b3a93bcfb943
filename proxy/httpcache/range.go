package httpcache

import (
	"math"
	"net/http"
	"strconv"
	"strings"
)

// Range requests (RFC 9110 §14). A cache that stores complete responses
// can answer a Range request from one itself: RangeApplies says whether
// the request's Range is to be honoured at all, RangeSet.Select (or
// selectRanges, both at once) picks the ranges once the length of the
// representation is known, and ContentRange / UnsatisfiedContentRange
// format the Content-Range field of the answer.

// MaxRangeSpecs is the most range-specs a Range field may list; with more,
// the field is ignored and the whole representation sent (RFC 9110 §14.2
// lets a server ignore a set of many small ranges).
const MaxRangeSpecs = 64

// MaxRangeParts is the most parts of a multipart/byteranges answer; a
// request whose satisfiable ranges exceed it gets the whole representation.
const MaxRangeParts = 16

// ByteRange is a satisfiable byte range of a representation: the bytes
// from First to Last, both included (RFC 9110 §14.1.1).
type ByteRange struct{ First, Last int64 }

// Len is the number of bytes in the range.
func (r ByteRange) Len() int64 { return r.Last - r.First + 1 }

// rangeSpec is one range-spec: an int-range first "-" [last] (last < 0
// when absent) or, with first < 0, a suffix-range "-" last.
type rangeSpec struct{ first, last int64 }

// RangeSet is a parsed Range field whose unit is bytes.
type RangeSet struct{ specs []rangeSpec }

// FirstByte is the smallest first-pos of the set's int-ranges, or 0 when
// it has a suffix-range (whose position depends on the length).
func (s RangeSet) FirstByte() int64 {
	min := int64(math.MaxInt64)
	for _, sp := range s.specs {
		if sp.first < 0 {
			return 0
		}
		if sp.first < min {
			min = sp.first
		}
	}
	return min
}

// ParseRange parses the lines of a request's Range field (RFC 9110 §14.2):
//
//	Range = ranges-specifier = range-unit "=" range-set
//	range-set = 1#range-spec ; int-range / suffix-range
//
// ok is false when the field is to be ignored: absent, sent on more than
// one line (it is a singleton), a unit other than "bytes" (units compare
// case-insensitively, §14.1; a server ignores units it does not support),
// a syntax error or an int-range whose last-pos is before its first-pos
// (an invalid ranges-specifier, which a server MAY ignore, §14.2), or more
// than MaxRangeSpecs specs. Positions too large for an int64 are clamped:
// they can only lie beyond the end of any representation.
func ParseRange(lines []string) (s RangeSet, ok bool) {
	if len(lines) != 1 {
		return RangeSet{}, false
	}
	unit, set, found := strings.Cut(strings.Trim(lines[0], " \t"), "=")
	if !found || !strings.EqualFold(unit, "bytes") {
		return RangeSet{}, false
	}
	for set != "" {
		var spec string
		spec, set, _ = strings.Cut(set, ",")
		if spec = strings.Trim(spec, " \t"); spec == "" {
			continue // empty list elements are ignored (RFC 9110 §5.6.1)
		}
		first, last, found := strings.Cut(spec, "-")
		if !found {
			return RangeSet{}, false
		}
		var sp rangeSpec
		switch {
		case first == "": // suffix-range
			n, ok := parseDigits(last)
			if !ok {
				return RangeSet{}, false
			}
			sp = rangeSpec{first: -1, last: n}
		default:
			f, ok := parseDigits(first)
			if !ok {
				return RangeSet{}, false
			}
			sp = rangeSpec{first: f, last: -1}
			if last != "" {
				l, ok := parseDigits(last)
				if !ok || l < f {
					return RangeSet{}, false
				}
				sp.last = l
			}
		}
		if len(s.specs) == MaxRangeSpecs {
			return RangeSet{}, false
		}
		s.specs = append(s.specs, sp)
	}
	if len(s.specs) == 0 {
		return RangeSet{}, false
	}
	return s, true
}

// parseDigits parses 1*DIGIT, clamping at MaxInt64.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// Resolve returns the satisfiable ranges of the set for a representation
// of size bytes, in the order they were requested, clipped to its end
// (RFC 9110 §14.1.1): an int-range is satisfiable when its first-pos is
// below size, a suffix-range when its suffix-length is positive (a suffix
// longer than the representation selects all of it). Nothing is
// satisfiable in an empty representation. An empty result means 416.
func (s RangeSet) Resolve(size int64) []ByteRange {
	if size <= 0 {
		return nil
	}
	var out []ByteRange
	for _, sp := range s.specs {
		switch {
		case sp.first < 0:
			if sp.last == 0 {
				continue
			}
			n := min(sp.last, size)
			out = append(out, ByteRange{First: size - n, Last: size - 1})
		case sp.first < size:
			last := size - 1
			if sp.last >= 0 && sp.last < last {
				last = sp.last
			}
			out = append(out, ByteRange{First: sp.first, Last: last})
		}
	}
	return out
}

// Select decides the answer to a Range request with set s, given a
// complete representation of size bytes with header h (RFC 9110 §14.2,
// §15.3.7, §15.5.17):
//
//   - http.StatusRequestedRangeNotSatisfiable when no range is satisfiable;
//   - http.StatusPartialContent with the ranges to send, in the order
//     requested: one range is sent as a single part, several as
//     multipart/byteranges;
//   - http.StatusOK (send the whole representation; a server may always
//     ignore Range) for an empty representation (as Go's
//     http.ServeContent, so that clients that send a Range with every
//     request are not refused an empty body), for more than MaxRangeParts
//     satisfiable ranges or ranges adding up to more than the
//     representation (overlaps: RFC 9110 §14.2 lets a server ignore them,
//     they only serve to amplify the response), and for several ranges
//     of a representation with a Content-Encoding, which a
//     multipart/byteranges message cannot carry unambiguously (a
//     recipient would apply the coding to the multipart body).
func (s RangeSet) Select(size int64, h http.Header) (status int, ranges []ByteRange) {
	if size <= 0 {
		return http.StatusOK, nil
	}
	ranges = s.Resolve(size)
	switch {
	case len(ranges) == 0:
		return http.StatusRequestedRangeNotSatisfiable, nil
	case len(ranges) == 1:
		return http.StatusPartialContent, ranges
	case len(ranges) > MaxRangeParts || len(h["Content-Encoding"]) > 0:
		return http.StatusOK, nil
	}
	var sum int64
	for _, r := range ranges {
		if sum += r.Len(); sum > size {
			return http.StatusOK, nil
		}
	}
	return http.StatusPartialContent, ranges
}

// RangeApplies reports whether the Range of req is to be honoured for a
// complete response with status and header h, and returns it parsed. It
// is false (answer with the whole response) when:
//
//   - the method is not GET, the only method range handling is defined for
//     (RFC 9110 §14.2);
//   - status is not 200: Range applies to the selected representation
//     only (§14.2), other statuses are sent as they are;
//   - the Range field is absent or ignored (see ParseRange);
//   - If-Range is present and its condition is false (IfRangeHolds);
//   - h carries Accept-Ranges: none: the origin asked that its
//     representation not be served in parts, and the cache respects that
//     (as nginx does unless proxy_force_ranges is set).
func RangeApplies(req *http.Request, status int, h http.Header) (RangeSet, bool) {
	if req.Method != http.MethodGet || status != http.StatusOK {
		return RangeSet{}, false
	}
	lines, ok := req.Header["Range"]
	if !ok {
		return RangeSet{}, false
	}
	s, ok := ParseRange(lines)
	if !ok || !IfRangeHolds(req.Header, h) || !AcceptsRanges(h) {
		return RangeSet{}, false
	}
	return s, true
}

// selectRanges is RangeApplies followed by RangeSet.Select for a
// representation of size bytes: 200 when Range does not apply.
func selectRanges(req *http.Request, status int, h http.Header, size int64) (int, []ByteRange) {
	s, ok := RangeApplies(req, status, h)
	if !ok {
		return http.StatusOK, nil
	}
	return s.Select(size, h)
}

// IfRangeHolds evaluates the If-Range field of a request header req
// against the selected representation's header h (RFC 9110 §13.1.5). It
// is true when there is no If-Range; otherwise true only when
//
//   - it is an entity-tag that matches h's ETag with the strong comparison
//     function (a weak tag never matches), or
//   - it is an HTTP-date equal to h's Last-Modified, which must be a strong
//     validator: h's Date at least one second later (RFC 9110 §8.8.2.2).
//
// Anything else, including an If-Range on several lines or unparseable,
// is false: the Range is then ignored and the whole representation sent.
func IfRangeHolds(req, h http.Header) bool {
	lines, ok := req["If-Range"]
	if !ok {
		return true
	}
	if len(lines) != 1 {
		return false
	}
	v := strings.Trim(lines[0], " \t")
	if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "W/") {
		t, ok := parseETag(v)
		if !ok {
			return false
		}
		cur, ok := storedETag(h)
		return ok && strongMatch(t, cur)
	}
	date, ok := parseHTTPDate(v)
	if !ok {
		return false
	}
	lm, ok := lastModified(h)
	return ok && lm.Equal(date) && lastModifiedIsStrong(h, lm)
}

// AcceptsRanges reports whether a response with header h may be served in
// parts: false when its Accept-Ranges lists "none".
func AcceptsRanges(h http.Header) bool {
	for _, line := range h["Accept-Ranges"] {
		for line != "" {
			var unit string
			unit, line, _ = strings.Cut(line, ",")
			if strings.EqualFold(strings.Trim(unit, " \t"), "none") {
				return false
			}
		}
	}
	return true
}

// ContentRange is the Content-Range field value of part r of a
// representation of size bytes (RFC 9110 §14.4): "bytes first-last/size".
func ContentRange(r ByteRange, size int64) string {
	b := make([]byte, 0, 48)
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, r.First, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.Last, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, size, 10)
	return string(b)
}

// UnsatisfiedContentRange is the Content-Range of a 416 answer for a
// representation of size bytes (RFC 9110 §14.4, §15.5.17): "bytes */size".
func UnsatisfiedContentRange(size int64) string {
	return "bytes */" + strconv.FormatInt(size, 10)
}
