package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// Backend is a pair of iptables and ip6tables commands.
type Backend struct {
	Name string // "nft" or "legacy"
	v4   string // iptables-nft, iptables-legacy, or iptables
	v6   string
}

// ErrNoIPTables: no iptables command was found.
var ErrNoIPTables = errors.New("iptables: no iptables command found (install iptables)")

// Detect picks the backend: the one of iptables-nft and iptables-legacy
// that already holds rules in this network namespace (a CNI or the node
// installed them: mixing backends would leave two rule sets that both
// apply), else the one the plain iptables command uses.
func Detect(ctx context.Context, want string) (Backend, error) {
	be := func(name string) Backend {
		return Backend{Name: name, v4: "iptables-" + name, v6: "ip6tables-" + name}
	}
	switch want {
	case "nft", "legacy":
		b := be(want)
		if _, err := exec.LookPath(b.v4); err != nil {
			return Backend{}, fmt.Errorf("iptables: backend %s: %w", want, err)
		}
		return b, nil
	case "", "auto":
	default:
		return Backend{}, fmt.Errorf("%w: backend %q: must be auto, nft or legacy", ErrOptions, want)
	}
	rules := func(cmd string) int {
		if _, err := exec.LookPath(cmd); err != nil {
			return -1
		}
		out, err := run(ctx, nil, cmd)
		if err != nil {
			return -1
		}
		return bytes.Count(out, []byte("\n-A "))
	}
	nft, legacy := rules("iptables-nft-save"), rules("iptables-legacy-save")
	switch {
	case legacy > 0 && legacy > nft:
		return be("legacy"), nil
	case nft > 0:
		return be("nft"), nil
	}
	out, err := run(ctx, nil, "iptables", "--version")
	if err != nil {
		if nft >= 0 {
			return be("nft"), nil
		}
		if legacy >= 0 {
			return be("legacy"), nil
		}
		return Backend{}, ErrNoIPTables
	}
	if strings.Contains(string(out), "legacy") {
		return be("legacy"), nil
	}
	return be("nft"), nil
}

// HasIPv6 reports whether the backend's ip6tables works here.
func (b Backend) HasIPv6(ctx context.Context) bool {
	_, err := run(ctx, nil, b.v6+"-save", "-t", "nat")
	return err == nil
}

// Script is the iptables-restore input installing o's rules.
func Script(o *Options, v6 bool) string {
	var sb strings.Builder
	sb.WriteString("*nat\n")
	for _, l := range o.Rules(v6) {
		sb.WriteString(l)
		sb.WriteByte('\n')
	}
	sb.WriteString("COMMIT\n")
	return sb.String()
}

// Install removes any rules this package installed before, then installs
// o's in one iptables-restore transaction per family (--noflush: the
// rules of others stay). Running it twice leaves one set.
func (b Backend) Install(ctx context.Context, o *Options, v6 bool) error {
	if err := b.Cleanup(ctx, v6); err != nil {
		return err
	}
	cmd := b.v4
	if v6 {
		cmd = b.v6
	}
	if _, err := run(ctx, strings.NewReader(Script(o, v6)), cmd+"-restore", "--noflush"); err != nil {
		return err
	}
	return nil
}

// Cleanup removes exactly what Install added: the jumps to this
// package's chains, then the chains. Missing ones are not an error.
func (b Backend) Cleanup(ctx context.Context, v6 bool) error {
	cmd := b.v4
	if v6 {
		cmd = b.v6
	}
	for _, j := range Jumps {
		for range 16 { // a jump added several times by hand
			if _, err := run(ctx, nil, cmd, append([]string{"-w", "5", "-t", "nat", "-D"}, j...)...); err != nil {
				break
			}
		}
	}
	for _, c := range Chains {
		if _, err := run(ctx, nil, cmd, "-w", "5", "-t", "nat", "-F", c); err != nil {
			continue // no such chain
		}
		if _, err := run(ctx, nil, cmd, "-w", "5", "-t", "nat", "-X", c); err != nil {
			return err
		}
	}
	return nil
}

// List returns the nat table's rules that concern this package.
func (b Backend) List(ctx context.Context, v6 bool) (string, error) {
	cmd := b.v4
	if v6 {
		cmd = b.v6
	}
	out, err := run(ctx, nil, cmd+"-save", "-c", "-t", "nat")
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for l := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(l, "ZEROHOP_") {
			sb.WriteString(l)
			sb.WriteByte('\n')
		}
	}
	return sb.String(), nil
}

func run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, name, args...)
	c.Stdin = stdin
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return out, fmt.Errorf("iptables: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
