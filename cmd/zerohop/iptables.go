package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/zerohop/zerohop/internal/iptables"
)

func newIPTablesCommand() *cli.Command {
	return &cli.Command{
		Name:  "iptables",
		Usage: "install (or --cleanup, --list) the rules redirecting the pod's TCP to the sidecar's transparent listener; run in the pod's network namespace with NET_ADMIN",
		Description: "Outbound TCP to --ports (default 80) goes to the transparent listener at --outbound-port, except the\n" +
			"sidecar's own (--proxy-uid), loopback and --exclude-cidrs; with --inbound-ports, connections to those app ports\n" +
			"go to the ingress listener at --inbound-port. Installing twice leaves one set of rules; --cleanup removes\n" +
			"exactly what was installed. See docs/transparent.md.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "proxy-uid", EnvVars: []string{"ZEROHOP_PROXY_UID"}, Usage: "the sidecar's user `ID`: its traffic is never redirected (required)"},
			&cli.IntFlag{Name: "proxy-gid", EnvVars: []string{"ZEROHOP_PROXY_GID"}, Usage: "also exempt the sidecar's group `ID`"},
			&cli.UintFlag{Name: "outbound-port", Value: 15001, Usage: "the transparent listener's `PORT`"},
			&cli.StringFlag{Name: "ports", Value: "80", Usage: "destination `PORTS` to redirect: a list of ports and ranges (80,8080-8090)"},
			&cli.StringFlag{Name: "include-cidrs", Usage: "redirect only destinations in these `CIDRS` (default: all)"},
			&cli.StringFlag{Name: "exclude-cidrs", Usage: "never redirect destinations in these `CIDRS`"},
			&cli.StringFlag{Name: "inbound-ports", Usage: "app `PORTS` whose inbound connections go to the ingress listener"},
			&cli.UintFlag{Name: "inbound-port", Usage: "the ingress listener's `PORT` (with --inbound-ports)"},
			&cli.StringFlag{Name: "ipv6", Value: "auto", Usage: "`auto` (when ip6tables works here), true or false"},
			&cli.StringFlag{Name: "backend", Value: "auto", Usage: "`auto` (the one already holding rules, else the system's), nft or legacy"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the iptables-restore input instead of installing it"},
			&cli.BoolFlag{Name: "cleanup", Usage: "remove the rules this command installed"},
			&cli.BoolFlag{Name: "list", Usage: "print the installed rules with their packet counters"},
		},
		Action: runIPTables,
	}
}

func runIPTables(c *cli.Context) error {
	fail := func(err error) error { return cli.Exit("iptables: "+strings.TrimPrefix(err.Error(), "iptables: "), 2) }
	o := &iptables.Options{ProxyUID: c.Int("proxy-uid"), ProxyGID: c.Int("proxy-gid")}
	var err error
	if c.Uint("outbound-port") > 65535 || c.Uint("inbound-port") > 65535 {
		return fail(fmt.Errorf("%w: ports are at most 65535", iptables.ErrOptions))
	}
	o.OutboundPort, o.InboundPort = uint16(c.Uint("outbound-port")), uint16(c.Uint("inbound-port"))
	if o.Ports, err = iptables.ParsePorts(c.String("ports")); err != nil {
		return fail(err)
	}
	if o.InboundPorts, err = iptables.ParsePorts(c.String("inbound-ports")); err != nil {
		return fail(err)
	}
	if o.IncludeCIDRs, err = iptables.ParseCIDRs(c.String("include-cidrs")); err != nil {
		return fail(err)
	}
	if o.ExcludeCIDRs, err = iptables.ParseCIDRs(c.String("exclude-cidrs")); err != nil {
		return fail(err)
	}
	out := c.App.Writer
	if !c.Bool("cleanup") && !c.Bool("list") {
		if err := o.Check(); err != nil {
			return fail(err)
		}
	}
	if c.Bool("dry-run") && !c.Bool("cleanup") && !c.Bool("list") {
		fmt.Fprintf(out, "# iptables-restore --noflush (IPv4)\n%s", iptables.Script(o, false))
		if c.String("ipv6") != "false" {
			fmt.Fprintf(out, "# ip6tables-restore --noflush (IPv6)\n%s", iptables.Script(o, true))
		}
		return nil
	}
	be, err := iptables.Detect(c.Context, c.String("backend"))
	if err != nil {
		return fail(err)
	}
	families := []bool{false}
	switch c.String("ipv6") {
	case "true":
		families = append(families, true)
	case "auto":
		if be.HasIPv6(c.Context) {
			families = append(families, true)
		}
	case "false":
	default:
		return fail(fmt.Errorf("%w: --ipv6 %q: must be auto, true or false", iptables.ErrOptions, c.String("ipv6")))
	}
	for _, v6 := range families {
		fam := "IPv4"
		if v6 {
			fam = "IPv6"
		}
		switch {
		case c.Bool("list"):
			rules, err := be.List(c.Context, v6)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(out, "# %s (%s)\n%s", fam, be.Name, rules)
		case c.Bool("cleanup"):
			if err := be.Cleanup(c.Context, v6); err != nil {
				return fail(err)
			}
			fmt.Fprintf(out, "removed zerohop's %s rules (%s)\n", fam, be.Name)
		default:
			if err := be.Install(c.Context, o, v6); err != nil {
				return fail(err)
			}
			fmt.Fprintf(out, "installed zerohop's %s rules (%s): ports %s to :%d\n", fam, be.Name, c.String("ports"), o.OutboundPort)
		}
	}
	return nil
}
