package zerohop_test

import (
	"encoding/json"
	"errors"
	"go/version"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestGoLineNotNewerThanNeeded: an app that imports the client must build
// with at least the go line of every module in the client's import
// closure, this module's included. So the module's go line may be no
// newer than the newest go line among the modules the client imports
// (golang.org/x/sys today); the toolchain the sidecar is built with is the
// separate toolchain line, which a module's dependents ignore.
func TestGoLineNotNewerThanNeeded(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-json=Module", "github.com/zerohop/zerohop/clients/go/zerohop").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	type mod struct{ Path, GoVersion string }
	var self string
	need, needBy := "", ""
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct{ Module *mod }
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		switch {
		case p.Module == nil: // the standard library
		case p.Module.Path == "github.com/zerohop/zerohop":
			self = p.Module.GoVersion
		case version.Compare("go"+p.Module.GoVersion, "go"+need) > 0:
			need, needBy = p.Module.GoVersion, p.Module.Path
		}
	}
	if self == "" || need == "" {
		t.Fatalf("implausible go list output: self %q, need %q", self, need)
	}
	if version.Compare("go"+self, "go"+need) > 0 {
		t.Errorf("go.mod says go %s, but the client's closure needs only go %s (%s): an app importing the client "+
			"would be forced onto go %s for nothing; lower the go line (keep the toolchain line for the sidecar's build)",
			self, need, needBy, self)
	}
}
