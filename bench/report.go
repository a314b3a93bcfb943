package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

// Targets are the ratios the issues set. A ratio "higher is better"
// unless listed in lowerIsBetter.
var Targets = map[string]float64{
	"app_hit_vs_nginx_hit_p50":          200,
	"miss_overhead_vs_nginx_closed_p50": 1.5,
	"miss_overhead_vs_nginx_closed_p99": 1.5,
	"miss_overhead_vs_nginx_open_p50":   1.5,
	"miss_overhead_vs_nginx_open_p99":   1.5,
	"sidecar_hit_per_core_vs_nginx":     0.8,
}

var lowerIsBetter = map[string]bool{
	"miss_overhead_vs_nginx_closed_p50": true, "miss_overhead_vs_nginx_closed_p99": true,
	"miss_overhead_vs_nginx_open_p50": true, "miss_overhead_vs_nginx_open_p99": true,
}

// WriteTable prints the run as a table.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "%-20s %-14s %10s %10s %10s %10s %11s %11s %12s\n",
		"scenario", "mode", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "req/s", "srv cpu µs", "rps/core")
	for _, x := range r.Results {
		if x.Skipped != "" {
			fmt.Fprintf(w, "%-20s skipped: %s\n", x.Scenario, x.Skipped)
			continue
		}
		cpu, pc := "", ""
		if x.ServerCPUus > 0 {
			cpu = fmt.Sprintf("%.1f", x.ServerCPUus)
			pc = fmt.Sprintf("%.0f", x.PerCoreRPS)
		}
		errs := ""
		if x.Errors > 0 {
			errs = fmt.Sprintf("  (%d errors)", x.Errors)
		}
		fmt.Fprintf(w, "%-20s %-14s %10.2f %10.2f %10.2f %10.2f %11.0f %11s %12s%s\n",
			x.Scenario, x.Mode, x.P50us, x.P90us, x.P99us, x.P999us, x.RPS, cpu, pc, errs)
	}
	fmt.Fprintln(w)
	names := make([]string, 0, len(r.Ratios))
	for k := range r.Ratios {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		verdict := ""
		if t, ok := Targets[k]; ok {
			met := r.Ratios[k] >= t
			if lowerIsBetter[k] {
				met = r.Ratios[k] <= t
			}
			verdict = fmt.Sprintf("target %s %g: %s", map[bool]string{true: "≤", false: "≥"}[lowerIsBetter[k]], t, map[bool]string{true: "met", false: "MISSED"}[met])
		}
		fmt.Fprintf(w, "%-36s %10.2f   %s\n", k, r.Ratios[k], verdict)
	}
	if m := r.SidecarMemKiB; m != nil {
		fmt.Fprintf(w, "\nsidecar RSS idle %.1f MiB (anon %.1f MiB), after the run %.1f MiB (anon %.1f MiB)\n",
			float64(m["idle_rss"])/1024, float64(m["idle_rss_anon"])/1024, float64(m["after_rss"])/1024, float64(m["after_rss_anon"])/1024)
	}
}

// WriteJSON writes the run as JSON.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadReport reads a JSON report.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	return &r, nil
}

// Compare reports every ratio of next that is worse than base's by more
// than tolerance (0.25 = 25%); ratios of p99s get twice the tolerance,
// since a p99 over a few thousand samples on a shared VM moves by half
// between identical runs. Ratios only: absolute times are not comparable
// across runs on shared machines.
func Compare(base, next *Report, tolerance float64) (regressions []string) {
	for k, b := range base.Ratios {
		n, ok := next.Ratios[k]
		if !ok || b == 0 || math.IsNaN(n) {
			continue
		}
		tol := tolerance
		if strings.HasSuffix(k, "_p99") {
			tol *= 2
		}
		worse := n < b*(1-tol)
		if lowerIsBetter[k] {
			worse = n > b*(1+tol)
		}
		if worse {
			regressions = append(regressions, fmt.Sprintf("%s: %.2f → %.2f (tolerance %.0f%%)", k, b, n, tol*100))
		}
	}
	sort.Strings(regressions)
	return regressions
}

// WriteSVG draws each latency scenario's percentile curve (log scale).
func (r *Report) WriteSVG(path string) error {
	const W, H, left, bottom = 900, 480, 70, 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`, W, H)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>`)
	qs := []float64{50, 75, 90, 95, 99, 99.9, 99.99}
	minV, maxV := math.Inf(1), 0.0
	type curve struct {
		name string
		pts  []float64
	}
	var curves []curve
	for _, x := range r.Results {
		if x.hist == nil || !strings.HasPrefix(x.Mode, "closed") {
			continue
		}
		c := curve{name: x.Scenario}
		for _, q := range qs {
			v := float64(x.hist.ValueAtQuantile(q)) / 1e3
			v = math.Max(v, 0.01)
			c.pts = append(c.pts, v)
			minV, maxV = math.Min(minV, v), math.Max(maxV, v)
		}
		curves = append(curves, c)
	}
	if len(curves) == 0 {
		return nil
	}
	lo, hi := math.Floor(math.Log10(minV)), math.Ceil(math.Log10(maxV))
	if hi == lo {
		hi++
	}
	y := func(v float64) float64 { return float64(H-bottom) - (math.Log10(v)-lo)/(hi-lo)*float64(H-bottom-20) }
	x := func(i int) float64 { return left + float64(i)*float64(W-left-180)/float64(len(qs)-1) }
	for d := lo; d <= hi; d++ {
		v := math.Pow(10, d)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="5" y="%.1f">%g µs</text>`, left, W-180, y(v), y(v), y(v)+4, v)
	}
	for i, q := range qs {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">p%g</text>`, x(i), H-bottom+15, q)
	}
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000"}
	for ci, c := range curves {
		col := colors[ci%len(colors)]
		var pts []string
		for i, v := range c.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, col, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`, W-170, 30+ci*16, col, c.name)
	}
	b.WriteString(`<text x="70" y="14">closed-loop latency by percentile, one client (log scale)</text></svg>`)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
