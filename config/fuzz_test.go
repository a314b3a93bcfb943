package config

import (
	"errors"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse feeds arbitrary bytes to Parse. It must not panic, must
// report failures as an ErrorList naming the file, and what it accepts
// must validate, clone and survive a marshal/parse round trip unchanged.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"~",
		configWithCache("64MiB"),
		validTail,
		"x-a: &a {weight: 2}\nclusters: [{name: c, endpoints: [{url: 'http://h', <<: *a}]}]\n",
		"listeners: [{name: a, mode: reverse}]\n" + validTail,
		"routes:\n  - name: r\n    cluster: api2\n",
		"cache: {size: 1.5GiB, region_size: 4Mi, heartbeat_interval: 250ms}\n",
		"a: &a [*a]\n",
		"cache:\n  size: [1\n",
		"---\n---\n",
		"admin: {address: '[::1]:9901', token: 0123456789abcdef}\n",
		everyField,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Parse error is not a non-empty ErrorList: %#v", err)
			}
			for _, e := range list {
				if e.File != "fuzz.yaml" || e.Line < 0 {
					t.Fatalf("bad FieldError %+v", e)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		if !reflect.DeepEqual(c.Clone(), c) {
			t.Fatal("Clone differs")
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		c2, err := Parse("again.yaml", out)
		if err != nil {
			t.Fatalf("re-Parse of marshalled config: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the config:\n%s", out)
		}
	})
}
