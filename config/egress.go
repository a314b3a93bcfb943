package config

import (
	"fmt"

	"github.com/zerohop/zerohop/internal/egresspolicy"
)

// Egress is the egress policy: which destinations the clients of forward
// listeners may reach with absolute-form requests that match no route and
// with CONNECT tunnels (docs/egress.md). It applies to every forward
// listener, after the listener's built-in refusals (Listener.Forward: the
// sidecar's own addresses, loopback, link-local, cloud metadata), which a
// rule cannot lift: only forward.allow_loopback and
// forward.allow_destinations do, and the policy still applies to what they
// let through. Requests that match a route go to the operator's cluster
// and are not checked. Absent (the default): no policy, every destination
// past the built-in refusals is reached and nothing is audited. Reloadable.
//
//	egress:
//	  default: deny
//	  audit_log: /var/log/zerohop/egress.jsonl
//	  rules:
//	    - {name: no-internal, action: deny, cidrs: [10.0.0.0/8, fd00::/8]}
//	    - {name: apis, action: allow, hosts: [api.example.com, "*.example.net"], ports: [443], methods: [CONNECT]}
//	    - {name: plain-get, action: allow, hosts: [cdn.example.org], schemes: [http], methods: [GET, HEAD]}
type Egress struct {
	// Default is the action for a destination no rule matches: "allow" or
	// "deny". Required.
	Default string `yaml:"default"`
	// Rules are checked in order; the first that matches decides.
	// Default: none.
	Rules []EgressRule `yaml:"rules"`
	// AuditLog is a file that receives the audit lines (JSON, one per
	// outbound request, tunnel and refusal), appended to and created
	// with mode 0600 if missing. Default "": the lines go to the access
	// log (with msg "egress"), or nowhere if it is disabled.
	AuditLog string `yaml:"audit_log"`
}

// EgressRule is one rule of the egress policy. Each list it sets must
// have an entry matching the destination (an empty list matches
// anything); a rule that sets nothing matches every destination.
type EgressRule struct {
	// Name is reported in the 403 (X-Zerohop-Egress-Rule and the body),
	// the audit log and zerohop_egress_decisions_total. Required, unique;
	// "default" is taken by the default action.
	Name string `yaml:"name"`
	// Action is "allow" or "deny". Required.
	Action string `yaml:"action"`
	// Hosts are the names the client asked for: "api.example.com" (exact,
	// case-insensitive), "*.example.com" (any subdomain, not
	// example.com itself) or "*" (any name or address). Default: any.
	Hosts []string `yaml:"hosts"`
	// CIDRs are address ranges, IPv4 or IPv6 ("10.0.0.0/8", "fd00::/8",
	// "192.0.2.7"), checked against the address actually dialled after
	// name resolution, so a name cannot smuggle a refused address.
	// Default: any.
	CIDRs []string `yaml:"cidrs"`
	// Ports are destination ports: "443" or an inclusive range
	// "8000-8999". Default: any.
	Ports []string `yaml:"ports"`
	// Schemes are "http" (absolute-form requests) and "https" (CONNECT
	// tunnels, whatever they carry). Default: any.
	Schemes []string `yaml:"schemes"`
	// Methods are request methods ("GET", "POST"; "CONNECT" for tunnels).
	// Default: any.
	Methods []string `yaml:"methods"`
}

// egress checks the egress section.
func (v *validator) egress(e *Egress) {
	if e == nil {
		return
	}
	switch e.Default {
	case "allow", "deny":
	case "":
		v.errorf("egress.default", "required: allow or deny (the action when no rule matches)")
	default:
		v.errorf("egress.default", "invalid action %q: must be allow or deny", clip(e.Default))
	}
	names := map[string]string{egresspolicy.DefaultRule: "egress.default"}
	for i, r := range e.Rules {
		p := fmt.Sprintf("egress.rules[%d]", i)
		if r.Name == egresspolicy.DefaultRule {
			v.errorf(p+".name", "the name %q is the default action's", r.Name)
		} else {
			v.name(p+".name", "egress rule", r.Name, names)
		}
		switch r.Action {
		case "allow", "deny":
		case "":
			v.errorf(p+".action", "required: allow or deny")
		default:
			v.errorf(p+".action", "invalid action %q: must be allow or deny", clip(r.Action))
		}
		for j, h := range r.Hosts {
			if _, _, _, err := egresspolicy.ParseHost(h); err != nil {
				v.errorf(fmt.Sprintf("%s.hosts[%d]", p, j), "%v", err)
			}
		}
		for j, c := range r.CIDRs {
			if _, err := egresspolicy.ParseCIDR(c); err != nil {
				v.errorf(fmt.Sprintf("%s.cidrs[%d]", p, j), "%v", err)
			}
		}
		for j, s := range r.Ports {
			if _, _, err := egresspolicy.ParsePorts(s); err != nil {
				v.errorf(fmt.Sprintf("%s.ports[%d]", p, j), "%v", err)
			}
		}
		for j, s := range r.Schemes {
			if s != "http" && s != "https" {
				v.errorf(fmt.Sprintf("%s.schemes[%d]", p, j), "invalid scheme %q: must be http or https", clip(s))
			}
		}
		for j, m := range r.Methods {
			if !validMethod(m) {
				v.errorf(fmt.Sprintf("%s.methods[%d]", p, j), "invalid method %q: want an upper-case token such as GET or CONNECT", clip(m))
			}
		}
	}
}

func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !('A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
