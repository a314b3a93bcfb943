package httpcache

import (
	"net/http"
	"strings"
	"time"
)

// AddValidators turns h, the header of a request about to be forwarded for
// validation, into a conditional request for the stored responses stored
// (RFC 9111 §4.3.1). Any If-None-Match and If-Modified-Since already in h
// are replaced, so that a 304 refers to the cache's own responses; the
// proxy then answers the client's own conditionals with NotModified.
//
//   - If-None-Match lists the entity tags of all stored responses that have
//     one (MUST, §4.3.1); weak tags are sent as is, since If-None-Match uses
//     weak comparison. Syntactically invalid ETags are not sent.
//   - If-Modified-Since carries the Last-Modified of the stored response
//     (SHOULD, §4.3.1) only when exactly one response is being validated.
//     §4.3.1 names Last-Modified only; Date is never used as a validator.
//
// It reports whether any validator was added. When none was, the request is
// unconditional and will fetch a full response.
func AddValidators(h http.Header, stored ...http.Header) bool {
	h.Del("If-None-Match")
	h.Del("If-Modified-Since")
	var tags []string
	for _, s := range stored {
		if t, ok := storedETag(s); ok && !listed(tags, t.String()) {
			tags = append(tags, t.String())
		}
	}
	if len(tags) > 0 {
		h.Set("If-None-Match", strings.Join(tags, ", "))
	}
	ims := false
	if len(stored) == 1 {
		if v := stored[0]["Last-Modified"]; len(v) == 1 {
			if _, ok := parseHTTPDate(v[0]); ok {
				h.Set("If-Modified-Since", strings.Trim(v[0], " \t"))
				ims = true
			}
		}
	}
	return len(tags) > 0 || ims
}

// ValidationOutcome classifies the response to a validation request
// (RFC 9111 §4.3.3).
type ValidationOutcome int

// Outcomes returned by classifyValidation.
const (
	// ValidationNotModified (304): pick the stored responses to update with
	// SelectForUpdate, update them with Freshen, recompute their Entry
	// with NewEntry and serve the selected one (§4.3.4).
	ValidationNotModified ValidationOutcome = iota
	// ValidationReplaced: a full response; use it to satisfy the request and store
	// it if Storable, replacing the stored one (§4.3.3).
	ValidationReplaced
	// ValidationFailed: an upstream error (IsUpstreamError); serve the stored
	// response if CanServeStaleOnError allows, else forward the error
	// (§4.3.3, RFC 5861 §4).
	ValidationFailed
)

// classifyValidation classifies the status of the response to a
// validation request; pass 0 when no response was received.
func classifyValidation(status int) ValidationOutcome {
	switch {
	case status == http.StatusNotModified:
		return ValidationNotModified
	case IsUpstreamError(status):
		return ValidationFailed
	}
	return ValidationReplaced
}

// SelectForUpdate returns the indices of the stored responses, among
// candidates, that a 304 response with header notModified updates (RFC
// 9111 §4.3.4). candidates are the stored responses that could have been
// selected for the request regardless of freshness, ordered most recent
// first.
//
//   - If the 304 carries a strong validator, every candidate with the same
//     strong validator is selected; if none has it, nothing is (MUST NOT
//     update). A strong ETag compares with the strong function; a
//     Last-Modified is strong for a candidate whose Date is at least one
//     second later (RFC 9110 §8.8.2.2).
//   - Otherwise, if it carries weak validators, the most recent candidate
//     matching them is selected.
//   - Otherwise, a single candidate without validators is selected.
//
// As a safeguard beyond §4.3.4, a candidate whose validators contradict
// those of the 304 (a different ETag or a different Last-Modified) is
// never selected. An empty result means the 304 cannot be used: the proxy
// must repeat the request unconditionally.
func SelectForUpdate(notModified http.Header, candidates []http.Header) []int {
	tag, hasTag := storedETag(notModified)
	lm, hasLM := lastModified(notModified)
	if !hasTag && !hasLM {
		if len(candidates) == 1 && !hasValidator(candidates[0]) {
			return []int{0}
		}
		return nil
	}
	conflicts := func(c http.Header) bool {
		if ct, ok := storedETag(c); ok && hasTag && !weakMatch(ct, tag) {
			return true
		}
		if cl, ok := lastModified(c); ok && hasLM && !cl.Equal(lm) {
			return true
		}
		return false
	}
	var out []int
	for i, c := range candidates {
		if conflicts(c) {
			continue
		}
		if ct, ok := storedETag(c); ok && hasTag && strongMatch(ct, tag) {
			out = append(out, i)
			continue
		}
		if cl, ok := lastModified(c); ok && hasLM && cl.Equal(lm) && lastModifiedIsStrong(c, cl) {
			out = append(out, i)
		}
	}
	if len(out) > 0 || (hasTag && !tag.weak) {
		return out
	}
	for i, c := range candidates {
		if conflicts(c) {
			continue
		}
		// No conflict and at least one shared validator: a weak match.
		_, okTag := storedETag(c)
		_, okLM := lastModified(c)
		if (okTag && hasTag) || (okLM && hasLM) {
			return []int{i}
		}
	}
	return nil
}

func hasValidator(h http.Header) bool {
	_, tag := storedETag(h)
	_, lm := lastModified(h)
	return tag || lm
}

// lastModifiedIsStrong applies RFC 9110 §8.8.2.2 for a cache comparing a
// received Last-Modified with the one in its entry: strong when the entry
// has a Date at least one second after Last-Modified.
func lastModifiedIsStrong(stored http.Header, lm time.Time) bool {
	v := stored["Date"]
	if len(v) == 0 {
		return false
	}
	date, ok := parseHTTPDate(v[0])
	return ok && date.Sub(lm) >= time.Second
}

// bodyBound lists fields a 304 must not change in a stored response
// because the stored content depends on them (RFC 9111 §3.2): its length,
// range and content coding. The stored bytes are kept as received.
var bodyBound = [...]string{"Content-Length", "Content-Range", "Content-Encoding"}

// Freshen returns a copy of stored updated with the header of a 304
// response, notModified, received at responseTime (RFC 9111 §4.3.4, §3.2):
// every field of the 304 replaces the stored field of the same name,
// except the fields excluded from storage (StrippedFields) and
// Content-Length, Content-Range and Content-Encoding, on which the stored
// content depends. Afterwards, fields that the updated Cache-Control
// forbids storing are removed.
//
// Age and Date are replaced even when the 304 lacks them, because the age
// of a revalidated response is based on the time of revalidation: a stale
// Age is dropped and a missing Date becomes responseTime (RFC 9110
// §6.6.1).
//
// The caller then re-runs Storable on the result (the 304 may have made
// the response unstorable, e.g. with no-store or private), recomputes its
// Entry with NewEntry and re-indexes it if VaryNames changed.
func Freshen(stored, notModified http.Header, responseTime time.Time) http.Header {
	out := stored.Clone()
	if out == nil {
		out = http.Header{}
	}
	skip := StrippedFields(notModified)
	for name, values := range notModified {
		if listed(skip, name) || listed(bodyBound[:], name) {
			continue
		}
		out[name] = append([]string(nil), values...)
	}
	if _, ok := notModified["Age"]; !ok {
		delete(out, "Age")
	}
	if _, ok := notModified["Date"]; !ok {
		out["Date"] = []string{responseTime.UTC().Format(http.TimeFormat)}
	}
	for _, name := range StrippedFields(out) {
		delete(out, name)
	}
	return out
}

// HeadMatches reports whether a 200 response to a HEAD request, with header
// head, may update the stored GET response stored (RFC 9111 §4.3.5): every
// validator (ETag, Last-Modified) the HEAD response carries must equal the
// stored one, and a Content-Length, if present, must equal the stored one.
// If it returns true the proxy updates the stored response with Freshen;
// otherwise it SHOULD consider the stored response stale. A HEAD response
// without any validator is not trusted to describe the stored content and
// yields false.
func HeadMatches(stored, head http.Header) bool {
	validators := 0
	for _, name := range [...]string{"Etag", "Last-Modified"} {
		hv, ok := head[name]
		if !ok {
			continue
		}
		validators++
		if !equalValues(hv, stored[name]) {
			return false
		}
	}
	if cl, ok := head["Content-Length"]; ok && !equalValues(cl, stored["Content-Length"]) {
		return false
	}
	return validators > 0
}

func equalValues(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Trim(a[i], " \t") != strings.Trim(b[i], " \t") {
			return false
		}
	}
	return true
}

// NotModified evaluates the client's own conditional request against the
// stored response it is about to be answered with, and reports whether the
// proxy should answer 304 instead (RFC 9111 §4.3.2, RFC 9110 §13.2.2):
//
//   - only GET and HEAD requests, and only stored 200 responses, are
//     evaluated;
//   - If-None-Match takes precedence: 304 when "*" or any listed tag
//     weakly matches the stored ETag;
//   - otherwise If-Modified-Since (ignored unless it is a single valid
//     HTTP-date): 304 when the stored Last-Modified — or, without one, its
//     Date, or else responseTime — is not later than it.
//
// If-Match and If-Unmodified-Since are not applicable to a cache (§4.3.2)
// and are ignored; If-Range is evaluated afterwards, when the answer is not
// a 304, by RangeApplies (RFC 9110 §13.2.2 orders the preconditions so).
// Use NotModifiedHeader for the 304's header.
func NotModified(req *http.Request, storedStatus int, stored http.Header, responseTime time.Time) bool {
	if storedStatus != http.StatusOK || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		return false
	}
	if inm, ok := req.Header["If-None-Match"]; ok {
		tag, haveTag := storedETag(stored)
		return matchETagList(inm, tag, haveTag)
	}
	ims := req.Header["If-Modified-Since"]
	if len(ims) != 1 { // RFC 9110 §13.1.3: more than one member is ignored
		return false
	}
	since, ok := parseHTTPDate(ims[0])
	if !ok {
		return false
	}
	ref, ok := lastModified(stored)
	if !ok {
		ref = dateValue(stored, responseTime)
	}
	return !ref.After(since)
}

// notModifiedFields are the fields a 304 must carry when a 200 would have
// (RFC 9110 §15.4.5).
var notModifiedFields = [...]string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary"}

// NotModifiedHeader returns the header of a 304 answering a conditional
// request from the stored response header stored (RFC 9110 §15.4.5):
// Cache-Control, Content-Location, Date, ETag, Expires and Vary, plus
// Last-Modified when there is no ETag (it then guides cache updates). The
// proxy adds Age.
func NotModifiedHeader(stored http.Header) http.Header {
	out := http.Header{}
	for _, name := range notModifiedFields {
		if v, ok := stored[name]; ok {
			out[name] = append([]string(nil), v...)
		}
	}
	if _, ok := stored["Etag"]; !ok {
		if v, ok := stored["Last-Modified"]; ok {
			out["Last-Modified"] = append([]string(nil), v...)
		}
	}
	return out
}
