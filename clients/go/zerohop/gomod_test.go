package zerohop_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/version"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// clientGoLine is the go line of the client's module
// (github.com/zerohop/zerohop/clients/go) and the newest one in its module
// graph: the lowest its code needs, since shm ranges over integers (Go
// 1.22). An app on go 1.22 or later builds with the client unchanged. Lower
// it only with the code; raise it only when the code needs it, and say so
// in clients/go/README.md.
const clientGoLine = "1.22"

// goModule is what `go list -m -json` says of a module.
type goModule struct {
	Path, Version, GoVersion string
	Main                     bool
	Dir                      string
	Replace                  *goModule
}

// goJSON runs the go command in dir and decodes its stream of JSON values.
func goJSON[T any](t *testing.T, dir string, env []string, args ...string) []T {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var vs []T
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var v T
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			return vs
		} else if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
}

// clientModuleGraph is `go list -m all` of the client's module.
func clientModuleGraph(t *testing.T) []goModule {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	mods := goJSON[goModule](t, ".", []string{"GOWORK=off", "GOFLAGS=-mod=readonly"}, "list", "-m", "-json", "all")
	if len(mods) < 3 || !mods[0].Main || mods[0].Path != "github.com/zerohop/zerohop/clients/go" {
		t.Fatalf("implausible module graph: %+v", mods)
	}
	return mods
}

// TestModuleGraphGoLines: the client is a module of its own whose graph
// holds only modules an app on clientGoLine can build, and none of the
// sidecar's (the main module, Pebble, Redis, OpenTelemetry, ...). An app's
// go line is raised to the newest in its graph, so one module with go 1.26
// would force every app onto Go 1.26.
func TestModuleGraphGoLines(t *testing.T) {
	mods := clientModuleGraph(t)
	if got := mods[0].GoVersion; got != clientGoLine {
		t.Errorf("clients/go/go.mod says go %s; clientGoLine is %s", got, clientGoLine)
	}
	for _, m := range mods {
		if m.GoVersion != "" && version.Compare("go"+m.GoVersion, "go"+clientGoLine) > 0 {
			t.Errorf("%s %s has go %s, newer than the client's go %s: an app importing the client would be forced onto it",
				m.Path, m.Version, m.GoVersion, clientGoLine)
		}
		for _, banned := range []string{
			"github.com/cockroachdb/", "github.com/redis/", "github.com/prometheus/", "github.com/urfave/",
			"go.opentelemetry.io/", "google.golang.org/", "gopkg.in/yaml", "k8s.io/",
			"github.com/zerohop/zerohop/invalidate/redisbridge",
		} {
			if strings.HasPrefix(m.Path, banned) {
				t.Errorf("the client's module graph holds %s", m.Path)
			}
		}
		if m.Path == "github.com/zerohop/zerohop" {
			t.Errorf("the client's module graph holds the sidecar's module (go %s)", m.GoVersion)
		}
	}
}

// TestGoLineIsNeeded: clientGoLine is not newer than the code needs, as
// compiling the client's graph at the Go version before it fails on a
// language feature of clientGoLine. (Standard library symbols newer than
// the go line are caught by go vet's stdversion check, part of make lint.)
func TestGoLineIsNeeded(t *testing.T) {
	clientModuleGraph(t) // skips without the go command
	var major, minor int
	if _, err := fmt.Sscanf(clientGoLine, "%d.%d", &major, &minor); err != nil {
		t.Fatal(err)
	}
	prev := fmt.Sprintf("go%d.%d", major, minor-1)
	cmd := exec.Command("go", "build", "-o", os.DevNull, "-gcflags=github.com/zerohop/zerohop/...=-lang="+prev, "./...")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the client's graph compiles at -lang=%s: lower clientGoLine and the go lines of clients/go, shm and invalidate", prev)
	}
	if want := "requires go" + clientGoLine; !bytes.Contains(out, []byte(want)) {
		t.Fatalf("build at -lang=%s failed, but not with %q:\n%s", prev, want, out)
	}
}

// TestAppBuildsOnClientGoLine builds an app module with go clientGoLine
// that requires the client (the working tree's modules, by replace
// directives as an app's vendoring or a release tag would give them),
// letting the go command add what is missing, with the local toolchain
// only: the app builds and its go line stays where it was.
func TestAppBuildsOnClientGoLine(t *testing.T) {
	mods := clientModuleGraph(t)
	app := t.TempDir()
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "module example.com/app\n\ngo %s\n\nrequire %s v0.0.0-00010101000000-000000000000\n\n", clientGoLine, mods[0].Path)
	self, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&gomod, "replace %s => %s\n", mods[0].Path, self)
	for _, m := range mods[1:] {
		if m.Replace != nil && m.Replace.Version == "" {
			fmt.Fprintf(&gomod, "replace %s => %s\n", m.Path, m.Replace.Dir)
		}
	}
	main := `package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/zerohop/zerohop/clients/go/zerohop"
)

func main() {
	c, err := zerohop.Open(os.TempDir(), &zerohop.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_ = &http.Client{Transport: c.Transport()}
}
`
	for name, body := range map[string]string{"go.mod": gomod.String(), "main.go": main} {
		if err := os.WriteFile(filepath.Join(app, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local"}
	cmd := exec.Command("go", "build", "-o", filepath.Join(app, "app"), ".")
	cmd.Dir = app
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("app on go %s does not build with the client: %v\n%s\ngo.mod:\n%s", clientGoLine, err, out, gomod.String())
	}
	after, err := os.ReadFile(filepath.Join(app, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(after, []byte("\ngo "+clientGoLine+"\n")) || bytes.Contains(after, []byte("\ntoolchain ")) {
		t.Errorf("building the app raised its go line:\n%s", after)
	}
	for _, m := range goJSON[goModule](t, app, env, "list", "-m", "-json", "all") {
		if m.GoVersion != "" && version.Compare("go"+m.GoVersion, "go"+clientGoLine) > 0 {
			t.Errorf("the app's module graph holds %s with go %s", m.Path, m.GoVersion)
		}
	}
}
