package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCompare(t *testing.T) {
	base := &Report{Ratios: map[string]float64{
		"app_hit_vs_nginx_hit_p50":          300,
		"miss_overhead_vs_nginx_closed_p50": 2.0,
		"sidecar_hit_per_core_vs_nginx":     0.5,
		"miss_overhead_vs_nginx_open_p99":   1.0,
	}}
	for _, tt := range []struct {
		name string
		next map[string]float64
		want []string
	}{
		{"same", base.Ratios, nil},
		{"higher-is-better within tolerance", map[string]float64{"app_hit_vs_nginx_hit_p50": 240}, nil},
		{"higher-is-better regressed", map[string]float64{"app_hit_vs_nginx_hit_p50": 200}, []string{"app_hit_vs_nginx_hit_p50"}},
		{"lower-is-better regressed", map[string]float64{"miss_overhead_vs_nginx_closed_p50": 2.6}, []string{"miss_overhead_vs_nginx_closed_p50"}},
		{"lower-is-better improved", map[string]float64{"miss_overhead_vs_nginx_closed_p50": 1.2}, nil},
		{"missing in new is not a regression", map[string]float64{}, nil},
		{"a p99 gets twice the tolerance", map[string]float64{"miss_overhead_vs_nginx_open_p99": 1.45}, nil},
		{"a p99 beyond it", map[string]float64{"miss_overhead_vs_nginx_open_p99": 1.55}, []string{"miss_overhead_vs_nginx_open_p99"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(base, &Report{Ratios: tt.next}, 0.25)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("got %q; want %q", got[i], tt.want[i])
				}
			}
		})
	}
}

// TestSuiteSmoke runs a short suite with real processes: the built
// zerohop binary as the sidecar, and nginx when installed.
func TestSuiteSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "zerohop")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/zerohop").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Options{Zerohop: bin, Duration: 300 * time.Millisecond, Rate: 200, Conns: 2,
		Only: []string{"app-hit", "origin", "sidecar", "nginx", "invalidation", "warm-restart"}, Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if r.Skipped != "" {
			if strings.HasPrefix(r.Scenario, "nginx") && strings.Contains(r.Skipped, "not installed") {
				continue
			}
			t.Errorf("%s skipped: %s", r.Scenario, r.Skipped)
			continue
		}
		seen[r.Scenario] = true
		if r.N == 0 || r.Errors > 0 || r.P50us <= 0 {
			t.Errorf("%s %s: n=%d errors=%d p50=%v", r.Scenario, r.Mode, r.N, r.Errors, r.P50us)
		}
	}
	for _, s := range []string{"app-hit-lookup", "app-hit-roundtrip", "origin-direct", "sidecar-hit", "sidecar-miss", "invalidation", "warm-restart"} {
		if !seen[s] {
			t.Errorf("scenario %s did not run", s)
		}
	}
	if _, err := exec.LookPath("nginx"); err == nil || fileExists("/usr/sbin/nginx") {
		if _, ok := rep.Ratios["app_hit_vs_nginx_hit_p50"]; !ok {
			t.Errorf("nginx is installed but no ratio to it: %v", rep.Ratios)
		}
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	if !strings.Contains(table.String(), "sidecar-hit") {
		t.Errorf("table lacks rows:\n%s", table.String())
	}
	js := filepath.Join(dir, "r.json")
	if err := rep.WriteJSON(js); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(js)
	if err != nil || len(back.Results) != len(rep.Results) {
		t.Fatalf("round trip: %v", err)
	}
	if err := rep.WriteSVG(filepath.Join(dir, "r.svg")); err != nil {
		t.Fatal(err)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
