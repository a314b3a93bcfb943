package httpcache

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestSurrogateKeys(t *testing.T) {
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("k%d", i%25))
	}
	var want25 []string
	for i := range 25 {
		want25 = append(want25, fmt.Sprintf("k%d", i))
	}
	for _, tt := range []struct {
		name string
		h    http.Header
		want []string
	}{
		{"none", hdr(), nil},
		{"Fastly Surrogate-Key is space-separated", hdr("Surrogate-Key", "post/1 user/7  home"), []string{"post/1", "user/7", "home"}},
		{"Fastly tabs separate too", hdr("Surrogate-Key", "a\tb"), []string{"a", "b"}},
		{"Cloudflare Cache-Tag is comma-separated", hdr("Cache-Tag", "tag1, tag2,tag3 ,"), []string{"tag1", "tag2", "tag3"}},
		{"both, Surrogate-Key first, deduplicated", hdr("Cache-Tag", "a, c", "Surrogate-Key", "a b"), []string{"a", "b", "c"}},
		{"several lines", hdr("Surrogate-Key", "a", "Surrogate-Key", "b a"), []string{"a", "b"}},
		{"case-sensitive", hdr("Surrogate-Key", "A a"), []string{"A", "a"}},
		{"empty values", hdr("Surrogate-Key", "  ", "Cache-Tag", ", ,"), nil},
		{"long list deduplicated in order", hdr("Surrogate-Key", strings.Join(many, " ")), want25},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := SurrogateKeys(tt.h); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SurrogateKeys() = %q; want %q", got, tt.want)
			}
		})
	}
}
