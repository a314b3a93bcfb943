package proxy

import (
	"mime"
	"testing"
)

// TestPlainMediaType: the quick media-type check agrees with
// mime.ParseMediaType wherever it answers.
func TestPlainMediaType(t *testing.T) {
	for _, ct := range []string{
		"text/html", "text/html; charset=utf-8", "text/html;charset=UTF-8", "application/octet-stream",
		"application/ld+json", "Text/HTML", "text/html; charset=\"utf-8\"", "text/html; q=1", "text", "/x", "x/",
		"text/html ; charset=utf-8", "text/html; charset=", "image/svg+xml", "text/event-stream", "", "a/b;",
	} {
		mt, ok := plainMediaType(ct)
		if !ok {
			continue
		}
		want, _, err := mime.ParseMediaType(ct)
		if err != nil || want != mt {
			t.Errorf("%q: quick %q; mime.ParseMediaType %q, %v", ct, mt, want, err)
		}
	}
	if _, ok := plainMediaType("application/octet-stream"); !ok {
		t.Error("the common shape went to ParseMediaType")
	}
}
