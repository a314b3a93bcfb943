package config

import (
	"strings"
	"testing"
)

// TestRingHashKeys: ring_hash decodes, its sizes default when the
// section or a key is left out.
func TestRingHashKeys(t *testing.T) {
	c, err := Parse("zerohop.yaml", []byte(lines(
		"clusters:",
		"  - name: a",
		"    endpoints: [{url: 'http://a:1'}, {url: 'http://b:1'}]",
		"    lb_policy: ring_hash",
		"    hash_policy: {header: X-User}",
		"    ring_hash: {points_per_endpoint: 4096}",
		"  - name: b",
		"    endpoints: [{url: 'http://a:1'}]",
		"    lb_policy: ring_hash",
		"    hash_policy: {source_address: true}",
		"  - name: c",
		"    endpoints: [{url: 'http://a:1'}]",
		"    lb_policy: ring_hash",
		"    hash_policy: {cookie: sid}",
		"    ring_hash: {maximum_ring_size: 8388608}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][2]int{{4096, DefaultMaxRingSize}, {DefaultRingPoints, DefaultMaxRingSize}, {DefaultRingPoints, MaxRingSize}} {
		cl := &c.Clusters[i]
		if cl.LBPolicy != LBRingHash {
			t.Errorf("cluster %d: policy %q", i, cl.LBPolicy)
		}
		if p, m := cl.RingSizes(); p != want[0] || m != want[1] {
			t.Errorf("cluster %d: ring sizes %d, %d, want %v", i, p, m, want)
		}
	}
}

func TestRingHashErrors(t *testing.T) {
	head := []string{"clusters:", "  - name: a", "    endpoints: [{url: 'http://a:1'}]"}
	for _, tc := range []struct {
		name string
		yaml []string
		want string
	}{
		{"without key", []string{"    lb_policy: ring_hash"},
			`zerohop.yaml:2: clusters[0].hash_policy: lb_policy "ring_hash" needs a hash_policy with exactly one of header, cookie or source_address`},
		{"bad cookie", []string{"    lb_policy: ring_hash", "    hash_policy: {cookie: 'a;b'}"},
			`zerohop.yaml:5: clusters[0].hash_policy.cookie: invalid cookie name "a;b"`},
		{"sizes without ring_hash", []string{"    lb_policy: maglev", "    hash_policy: {cookie: sid}", "    ring_hash: {}"},
			`zerohop.yaml:6: clusters[0].ring_hash: only for lb_policy "ring_hash"`},
		{"zero points", []string{"    lb_policy: ring_hash", "    hash_policy: {cookie: sid}", "    ring_hash: {points_per_endpoint: 0}"},
			`zerohop.yaml:6: clusters[0].ring_hash.points_per_endpoint: must be from 1 to maximum_ring_size (1048576), got 0`},
		{"points over max", []string{"    lb_policy: ring_hash", "    hash_policy: {cookie: sid}", "    ring_hash:", "      maximum_ring_size: 100", "      points_per_endpoint: 200"},
			`zerohop.yaml:8: clusters[0].ring_hash.points_per_endpoint: must be from 1 to maximum_ring_size (100), got 200`},
		{"max too large", []string{"    lb_policy: ring_hash", "    hash_policy: {cookie: sid}", "    ring_hash: {maximum_ring_size: 8388609}"},
			`zerohop.yaml:6: clusters[0].ring_hash.maximum_ring_size: must be from 1 to 8388608, got 8388609`},
		{"unknown key", []string{"    lb_policy: ring_hash", "    hash_policy: {cookie: sid}", "    ring_hash: {minimum_ring_size: 1024}"},
			`minimum_ring_size`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("zerohop.yaml", []byte(lines(append(head[:3:3], tc.yaml...)...)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}
