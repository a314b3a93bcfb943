package httpcache

import (
	"strings"
	"time"
)

// parseHTTPDate parses an HTTP-date (RFC 9110 §5.6.7). Recipients MUST
// accept all three formats; IMF-fixdate is parsed by hand because it is by
// far the most common and this path must not allocate. Day and month names
// and the "GMT" zone are matched case-insensitively, as RFC 9110 §5.6.7
// encourages recipients to be robust; anything else (a "UTC" zone,
// two-digit years in IMF-fixdate, missing comma, "0") is invalid.
func parseHTTPDate(s string) (time.Time, bool) {
	s = strings.Trim(s, " \t")
	if len(s) == len("Sun, 06 Nov 1994 08:49:37 GMT") {
		if t, ok := parseIMFFixdate(s); ok {
			return t, true
		}
	}
	if !strings.HasSuffix(s, " GMT") && !strings.HasSuffix(s, " gmt") && !isASCTime(s) {
		return time.Time{}, false
	}
	// rfc850-date ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime-date
	// ("Sun Nov  6 08:49:37 1994"). Go maps two-digit years 69-99 to 19xx
	// and 00-68 to 20xx, which matches the RFC 9110 "more than 50 years in
	// the future" rule for every date up to 2068.
	for _, layout := range [...]string{"Monday, 02-Jan-06 15:04:05 GMT", time.ANSIC} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func isASCTime(s string) bool {
	// "Sun Nov  6 08:49:37 1994": no comma, ends in a four-digit year.
	return len(s) == len("Sun Nov  6 08:49:37 1994") && strings.IndexByte(s, ',') < 0
}

var (
	dayNames   = [...]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
	monthNames = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

// parseIMFFixdate parses "Sun, 06 Nov 1994 08:49:37 GMT".
func parseIMFFixdate(s string) (time.Time, bool) {
	if s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
		s[19] != ':' || s[22] != ':' || s[25] != ' ' || !strings.EqualFold(s[26:], "GMT") {
		return time.Time{}, false
	}
	okDay := false
	for _, n := range dayNames {
		if strings.EqualFold(s[:3], n) {
			okDay = true
			break
		}
	}
	month := 0
	for i, n := range monthNames {
		if strings.EqualFold(s[8:11], n) {
			month = i + 1
			break
		}
	}
	day, ok1 := digits(s[5:7])
	year, ok2 := digits(s[12:16])
	hour, ok3 := digits(s[17:19])
	minute, ok4 := digits(s[20:22])
	sec, ok5 := digits(s[23:25])
	if !okDay || month == 0 || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 ||
		day < 1 || day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	if sec == 60 { // leap second (RFC 5322 allows it); time.Date would roll over
		sec = 59
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), true
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
