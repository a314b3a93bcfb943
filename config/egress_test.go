package config

import (
	"strings"
	"testing"
)

func TestEgressConfig(t *testing.T) {
	good := lines(
		"egress:",
		"  default: deny",
		"  audit_log: /tmp/audit.jsonl",
		"  rules:",
		"    - {name: internal, action: deny, cidrs: [10.0.0.0/8, 'fd00::/8', 192.0.2.7]}",
		"    - {name: apis, action: allow, hosts: [api.example.com, '*.example.net'], ports: [443, 8000-8999], schemes: [https], methods: [CONNECT]}",
	)
	c, err := Parse("zerohop.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Egress == nil || c.Egress.Default != "deny" || len(c.Egress.Rules) != 2 || c.Egress.Rules[1].Ports[1] != "8000-8999" ||
		c.Egress.Rules[1].Ports[0] != "443" || c.Egress.AuditLog != "/tmp/audit.jsonl" {
		t.Fatalf("decoded %+v", c.Egress)
	}
	if c, err := Parse("zerohop.yaml", []byte("cache: {size: 64MiB}\n")); err != nil || c.Egress != nil {
		t.Fatalf("no egress section: %v, %+v", err, c.Egress)
	}

	bad := []struct{ name, yaml, want string }{
		{"bad default", lines("egress: {default: maybe}"), `zerohop.yaml:1: egress.default: invalid action "maybe"`},
		{"no action", lines("egress:", "  default: allow", "  rules:", "    - {name: a}"),
			`zerohop.yaml:4: egress.rules[0].action: required`},
		{"duplicate name", lines("egress:", "  default: allow", "  rules:", "    - {name: a, action: deny}", "    - {name: a, action: deny}"),
			`zerohop.yaml:5: egress.rules[1].name: duplicate egress rule name "a" (first defined at line 4)`},
		{"default taken", lines("egress:", "  default: allow", "  rules:", "    - {name: default, action: deny}"),
			`egress.rules[0].name: the name "default" is the default action's`},
		{"address as host", lines("egress:", "  default: allow", "  rules:", "    - {name: a, action: deny, hosts: [10.0.0.1]}"),
			`zerohop.yaml:4: egress.rules[0].hosts[0]: egresspolicy: invalid rule: host "10.0.0.1"`},
		{"bad cidr", lines("egress:", "  default: allow", "  rules:", "    - name: a", "      action: deny", "      cidrs: [10.0.0.0/33]"),
			`zerohop.yaml:6: egress.rules[0].cidrs[0]: egresspolicy: invalid rule: cidr "10.0.0.0/33"`},
		{"bad port range", lines("egress:", "  default: allow", "  rules:", "    - {name: a, action: deny, ports: [9-8]}"),
			`egress.rules[0].ports[0]: egresspolicy: invalid rule: port "9-8"`},
		{"port zero", lines("egress:", "  default: allow", "  rules:", "    - {name: a, action: deny, ports: [0]}"),
			`egress.rules[0].ports[0]`},
		{"bad scheme", lines("egress:", "  default: allow", "  rules:", "    - {name: a, action: deny, schemes: [ftp]}"),
			`egress.rules[0].schemes[0]: invalid scheme "ftp"`},
		{"lower-case method", lines("egress:", "  default: allow", "  rules:", "    - {name: a, action: deny, methods: [get]}"),
			`egress.rules[0].methods[0]: invalid method "get"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("zerohop.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestCredentialsConfig(t *testing.T) {
	head := lines("clusters:", "  - name: api", "    endpoints: [{url: 'http://10.0.0.7:8080'}]")
	c, err := Parse("zerohop.yaml", []byte(head+lines("    credentials: {type: bearer, file: /s/token}")))
	if err != nil {
		t.Fatal(err)
	}
	if cr := c.Clusters[0].Credentials; cr == nil || cr.CheckInterval != DefaultCredentialCheckInterval || cr.CachePartition != "" {
		t.Fatalf("decoded %+v", cr)
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"no type", "    credentials: {file: /s}", `zerohop.yaml:4: clusters[0].credentials.type: required`},
		{"bad type", "    credentials: {type: digest, file: /s}", `clusters[0].credentials.type: invalid type "digest"`},
		{"header without name", "    credentials: {type: header, file: /s}", `clusters[0].credentials.header: required for type header`},
		{"header for bearer", "    credentials: {type: bearer, header: X-A, file: /s}", `clusters[0].credentials.header: only for type header`},
		{"owned header", "    credentials: {type: header, header: host, file: /s}", `"Host" is set by the proxy`},
		{"bad header", "    credentials: {type: header, header: 'a b', file: /s}", `invalid header name "a b"`},
		{"no file", "    credentials: {type: basic}", `clusters[0].credentials.file: required`},
		{"zero interval", "    credentials: {type: basic, file: /s, check_interval: 0s}", `clusters[0].credentials.check_interval: must be > 0`},
		{"bad partition", "    credentials: {type: basic, file: /s, cache_partition: 'a b'}", `clusters[0].credentials.cache_partition: invalid partition`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("zerohop.yaml", []byte(head+lines(tt.yaml)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}
