package inject

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/iptables"
)

// SidecarUID is the user the sidecar container runs as, and so the owner
// zerohop iptables exempts from interception (--proxy-uid): the two must
// agree, or the sidecar's own connections loop back into it.
const SidecarUID = 65532

// InitContainerName is the init container that installs the
// interception rules, before the sidecar and the app start.
const InitContainerName = "zerohop-init"

// transparentListener returns cfg's first listener with mode
// transparent, or nil.
func transparentListener(cfg *config.Config) *config.Listener {
	for i := range cfg.Listeners {
		if cfg.Listeners[i].Mode == config.ModeTransparent {
			return &cfg.Listeners[i]
		}
	}
	return nil
}

// addInterception adds the init container running zerohop iptables, as
// istio-init and linkerd-init do: root with NET_ADMIN and NET_RAW only,
// in the pod's network namespace, before every other container.
func addInterception(spec *corev1.PodSpec, o Options) error {
	l := transparentListener(o.Config)
	if l == nil {
		return fmt.Errorf("inject: --transparent needs a listener with mode: transparent in the configuration (none of %d is)", len(o.Config.Listeners))
	}
	_, port, err := net.SplitHostPort(l.Address)
	if err != nil {
		return fmt.Errorf("inject: listener %q: %w", l.Name, err)
	}
	if _, err := iptables.ParsePorts(o.InterceptPorts); err != nil {
		return fmt.Errorf("inject: intercept ports: %w", err)
	}
	if _, err := iptables.ParseCIDRs(o.ExcludeCIDRs); err != nil {
		return fmt.Errorf("inject: exclude CIDRs: %w", err)
	}
	args := []string{"iptables", "--proxy-uid", strconv.Itoa(SidecarUID), "--outbound-port", port, "--ports", o.InterceptPorts}
	if o.ExcludeCIDRs != "" {
		args = append(args, "--exclude-cidrs", o.ExcludeCIDRs)
	}
	root, no := int64(0), false
	ic := corev1.Container{
		Name:  InitContainerName,
		Image: o.InitImage,
		Args:  args,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: &root, RunAsNonRoot: &no, Privileged: &no, AllowPrivilegeEscalation: &no,
			ReadOnlyRootFilesystem: &no, // iptables takes its lock in /run
			Capabilities:           &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}, Drop: []corev1.Capability{"ALL"}},
		},
	}
	spec.InitContainers = append([]corev1.Container{ic}, spec.InitContainers...)
	return nil
}

// verifyInterception checks the init container, when there is one,
// against the sidecar and cfg: it runs first, it exempts the sidecar's
// user, and it redirects to the transparent listener's port.
func verifyInterception(spec *corev1.PodSpec, cfg *config.Config, sc *corev1.Container) []error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	idx := -1
	for i, c := range spec.InitContainers {
		if c.Name == InitContainerName {
			idx = i
		}
	}
	l := transparentListener(cfg)
	if idx < 0 {
		if l != nil {
			bad("the configuration has a transparent listener (%s) but no %q init container installs the interception rules", l.Name, InitContainerName)
		}
		return errs
	}
	if l == nil {
		return append(errs, fmt.Errorf("%s: redirects to a transparent listener, but the configuration has none", InitContainerName))
	}
	ic := &spec.InitContainers[idx]
	if idx != 0 {
		bad("%s: must be the first init container (the rules must be in place before anything else starts)", InitContainerName)
	}
	flag := func(name string) string {
		for i, a := range ic.Args {
			if a == name && i+1 < len(ic.Args) {
				return ic.Args[i+1]
			}
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v
			}
		}
		return ""
	}
	if len(ic.Args) == 0 || ic.Args[0] != "iptables" {
		bad("%s: args must run zerohop iptables (got %q)", InitContainerName, ic.Args)
	}
	if sc.SecurityContext == nil || sc.SecurityContext.RunAsUser == nil {
		bad("sidecar: runAsUser must be set: the interception rules exempt the sidecar by its user id")
	} else if got := flag("--proxy-uid"); got != strconv.FormatInt(*sc.SecurityContext.RunAsUser, 10) {
		bad("%s: --proxy-uid %q is not the sidecar's runAsUser %d (its own connections would loop back into it)",
			InitContainerName, got, *sc.SecurityContext.RunAsUser)
	}
	_, port, _ := net.SplitHostPort(l.Address)
	if got := flag("--outbound-port"); got != port {
		bad("%s: --outbound-port %q is not the transparent listener %s's port %s", InitContainerName, got, l.Name, port)
	}
	switch host, _, _ := net.SplitHostPort(l.Address); host {
	case "127.0.0.1", "::1", "0.0.0.0", "::", "":
	default:
		bad("listener %s: a transparent listener for redirected outbound traffic must listen on 127.0.0.1 or ::1 (or all addresses): "+
			"the kernel redirects locally generated connections to the loopback address", l.Name)
	}
	caps := map[corev1.Capability]bool{}
	if ic.SecurityContext != nil && ic.SecurityContext.Capabilities != nil {
		for _, c := range ic.SecurityContext.Capabilities.Add {
			caps[c] = true
		}
	}
	if !caps["NET_ADMIN"] {
		bad("%s: needs the NET_ADMIN capability to install rules", InitContainerName)
	}
	return errs
}

// hasProxyEnv reports whether c sets a proxy variable.
func hasProxyEnv(c *corev1.Container) bool {
	_, ok := envValue(c, "HTTP_PROXY", "http_proxy")
	return ok
}
