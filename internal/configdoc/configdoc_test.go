package configdoc

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestReferenceUpToDate fails when docs/config.md is not what the config
// package generates today: a field, a doc comment or a default changed
// without `go generate ./config` (or `make docs`).
func TestReferenceUpToDate(t *testing.T) {
	want, err := Generate(os.DirFS("../../config"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("docs/config.md is out of date: run `go generate ./config` (or `make docs`).\nfirst difference at line %d:\n have: %q\n want: %q", i+1, g, w)
			}
		}
	}
}

// TestReferenceCoversEveryKey checks keys, types and defaults the
// reference must show, read from the code rather than copied from it.
func TestReferenceCoversEveryKey(t *testing.T) {
	b, err := Generate(os.DirFS("../../config"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{
		"### `cache.size`\n\nType: size. Default: `64MiB`.",
		"### `listeners[].forward.tunnel_idle_timeout`\n\nType: duration. Default: `1h`.",
		"### `clusters[].endpoints[].weight`\n\nType: integer. Default: `1`.",
		"### `clusters[].body_idle_timeout`\n\nType: duration. Default: `1m`.",
		"### `routes[].cache.enabled`\n\nType: bool. Default: `true`.",
		"### `invalidation.redis.stream`\n\nType: string. Default: `zerohop:invalidations`.",
		"### `store.memory_only_on_error`\n\nType: bool. Default: `true`.",
		"### `clusters[].name`\n\nType: string. Default: none (required).",
		"## `routes[].match`\n\nMatch is a conjunction",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
}

func TestParagraph(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"One\ntwo.\n", "One two.\n"},
		{"One.\n\nTwo.\n", "One.\n\nTwo.\n"},
		{"Like:\n\n\ta: 1\n\tb: 2\n\nEnd.\n", "Like:\n\n\n```\na: 1\nb: 2\n```\n\nEnd.\n"},
	} {
		if got := paragraph(tt.in); got != tt.want {
			t.Errorf("paragraph(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
