// Package examples holds example configuration files for common set-ups;
// its test checks that each one loads and validates.
package examples

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerohop/zerohop/config"
)

// TestExamplesValidate loads every example with the config package, checks
// the set-up it claims to show, and runs `zerohop validate` on it.
func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]func(t *testing.T, c *config.Config){
		"egress-cache.yaml": func(t *testing.T, c *config.Config) {
			if c.Listeners[0].Mode != config.ModeForward || c.Listeners[0].Address != "127.0.0.1:8089" {
				t.Errorf("want a loopback forward listener: %+v", c.Listeners[0])
			}
		},
		"ingress-routes.yaml": func(t *testing.T, c *config.Config) {
			if c.Listeners[0].Mode != config.ModeReverse || len(c.Routes) < 2 {
				t.Errorf("want a reverse listener and routes: %+v", c.Listeners)
			}
		},
		"canary-weights.yaml": func(t *testing.T, c *config.Config) {
			e := c.Clusters[0].Endpoints
			if len(e) != 2 || e[0].Weight != 95 || e[1].Weight != 5 {
				t.Errorf("want a 95/5 split: %+v", e)
			}
		},
		"store-redis.yaml": func(t *testing.T, c *config.Config) {
			if c.Store.Path == "" || c.Invalidation.Redis == nil {
				t.Errorf("want a store and Redis: %+v %+v", c.Store, c.Invalidation)
			}
		},
	}
	if len(files) != len(checks) {
		t.Errorf("examples %v; the test knows %d: add a check for each new file", files, len(checks))
	}
	bin := filepath.Join(t.TempDir(), "zerohop")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/zerohop").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			c, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if check := checks[f]; check != nil {
				check(t, c)
			}
			out, err := exec.Command(bin, "validate", f).CombinedOutput()
			if err != nil || !strings.Contains(string(out), f+": ok") {
				t.Errorf("zerohop validate %s: %v\n%s", f, err, out)
			}
		})
	}
}
