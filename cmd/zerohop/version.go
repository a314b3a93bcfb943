package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/shm"
)

// Set at build time by the Makefile and the Dockerfile:
//
//	-ldflags "-X main.version=v0.3.0 -X main.commit=$(git rev-parse HEAD)"
//
// When they are not set, buildVersion falls back to what the Go toolchain
// records in the binary: the module version for `go install ...@v0.3.0`
// and the VCS revision when built inside a checkout (absent with
// -buildvcs=false).
var (
	version = "dev"
	commit  = ""
)

// versionInfo is what `zerohop version` prints.
type versionInfo struct {
	Version   string // release version, "dev" when unknown
	Commit    string // VCS revision, "" when unknown
	Modified  bool   // the work tree had uncommitted changes
	GoVersion string // the toolchain that built the binary
}

// buildVersion combines the -ldflags values with the binary's build info.
func buildVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if v.Commit == "" {
				v.Commit = s.Value
			}
		case "vcs.modified":
			if commit == "" { // only meaningful with the revision it came with
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
}

func (v versionInfo) String() string {
	c := v.Commit
	if c == "" {
		c = "unknown"
	} else if len(c) > 12 {
		c = c[:12]
	}
	if v.Modified {
		c += "-dirty"
	}
	return fmt.Sprintf("zerohop %s (commit %s, %s, %s/%s, cache format %d.%d)",
		v.Version, c, v.GoVersion, runtime.GOOS, runtime.GOARCH, shm.MajorVersion, shm.MinorVersion)
}

func newVersionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the commit, the Go version and the cache file format version",
		Action: func(c *cli.Context) error {
			fmt.Fprintln(c.App.Writer, buildVersion())
			return nil
		},
	}
}
