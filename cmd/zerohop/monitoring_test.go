package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestMonitoringUsesRealMetrics reads every metric name the shipped
// Grafana dashboard and Prometheus alerting rules use and checks that a
// real sidecar exports it: the binary runs with a store, serves misses,
// hits, an uncacheable response, an upstream error and a refused egress
// request (labelled metrics appear only once used), and /metrics is
// scraped.
func TestMonitoringUsesRealMetrics(t *testing.T) {
	used := map[string][]string{} // metric -> files using it
	metricRE := regexp.MustCompile(`\bzerohop_[a-z0-9_]+`)
	addExprs := func(file string, exprs []string) {
		if len(exprs) == 0 {
			t.Fatalf("%s: no expressions found", file)
		}
		for _, e := range exprs {
			for _, m := range metricRE.FindAllString(e, -1) {
				used[m] = append(used[m], file)
			}
		}
	}

	// The dashboard: valid JSON; every panel's targets' expressions.
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	b, err := os.ReadFile("../../deploy/monitoring/zerohop-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs = append(exprs, q)
		}
	}
	addExprs("dashboard", exprs)

	// The alerting rules: a Prometheus rule file, strictly decoded.
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	f, err := os.Open("../../deploy/monitoring/zerohop-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alerts: %v", err)
	}
	exprs = nil
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert rule %+v lacks a name, expression, severity or summary", r)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	addExprs("alerts", exprs)

	// A real sidecar with a store, after traffic of every kind.
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/private" {
			w.Header().Set("Cache-Control", "no-store")
		} else {
			w.Header().Set("Cache-Control", "max-age=300")
		}
		io.WriteString(w, "body")
	}))
	defer origin.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "zerohop.yaml")
	os.WriteFile(cfg, []byte("store: {path: "+filepath.Join(dir, "store")+"}\n"), 0o644)
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg)
	c := d.client()
	dead := freeAddr(t) // nothing listens there: an upstream error
	for _, u := range []string{origin.URL + "/a", origin.URL + "/a", origin.URL + "/private", "http://" + dead + "/x", "http://" + d.admin + "/stats"} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + d.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exported := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# TYPE ") {
			exported[strings.Fields(line)[2]] = true
		} else if line != "" && !strings.HasPrefix(line, "#") {
			name, _, _ := strings.Cut(line, "{")
			name, _, _ = strings.Cut(name, " ")
			exported[name] = true
		}
	}
	var missing []string
	for m, files := range used {
		if !exported[m] {
			missing = append(missing, m+" (used in "+strings.Join(files, ", ")+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("metrics used by deploy/monitoring that the sidecar does not export:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(used) < 15 {
		t.Errorf("only %d metrics found in the dashboard and rules: %v", len(used), used)
	}
}
