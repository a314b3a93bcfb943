package bench

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// OriginPlaceholder is replaced, in a sidecar configuration file
// (Options.SidecarConfig), by the bench origin's host:port, which is a
// free port chosen at each run: a cluster's endpoint is written
// "http://${BENCH_ORIGIN}".
const OriginPlaceholder = "${BENCH_ORIGIN}"

// ParseHeader parses a "Name: value" request field, as curl's -H takes it.
func ParseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") {
		return "", "", fmt.Errorf("bench: header %q: want \"Name: value\"", s)
	}
	return http.CanonicalHeaderKey(name), strings.TrimSpace(value), nil
}

// sidecarArgs is the sidecar's command line: the configuration file when
// one is given (Options.SidecarConfig), then the suite's own flags, which
// override the file's first listener address, admin address and cache
// (as flags override the file in `zerohop run`). The working directory
// is the file's own, so that relative paths in it (key files) are found
// next to it.
func (e *env) sidecarArgs(extra ...string) (dir string, args []string) {
	dir = e.dir
	args = []string{"run"}
	if e.scConfig != "" {
		dir = filepath.Dir(e.opts.SidecarConfig)
		args = append(args, "--config", e.scConfig)
	}
	args = append(args, "--listen", e.scAddr, "--admin", e.scAdmin, "--cache-dir", e.scDir, "--cache-size", "64MiB",
		"--access-log", "off", "--log-level", "warn", "--forward-allow-loopback")
	return dir, append(args, extra...)
}

// prepareSidecarConfig writes Options.SidecarConfig, with the origin's
// address in place of OriginPlaceholder, into the run's directory.
func (e *env) prepareSidecarConfig() error {
	if e.opts.SidecarConfig == "" {
		return nil
	}
	abs, err := filepath.Abs(e.opts.SidecarConfig)
	if err != nil {
		return err
	}
	e.opts.SidecarConfig = abs
	b, err := os.ReadFile(abs)
	if err != nil {
		return fmt.Errorf("bench: sidecar config: %w", err)
	}
	origin := strings.TrimPrefix(e.originURL, "http://")
	e.scConfig = filepath.Join(e.dir, "sidecar.yaml")
	return os.WriteFile(e.scConfig, []byte(strings.ReplaceAll(string(b), OriginPlaceholder, origin)), 0o600)
}
