package config

import (
	"strings"
	"testing"
)

const (
	caPEM     = "testdata/tls/ca.pem"
	srvPEM    = "testdata/tls/server.pem"
	srvKey    = "testdata/tls/server-key.pem"
	cliPEM    = "testdata/tls/client.pem"
	cliKey    = "testdata/tls/client-key.pem"
	garbage   = "testdata/tls/garbage.pem"
	missingCA = "testdata/tls/missing.pem"
)

// tlsCluster is a config with one https cluster whose tls section is tls.
func tlsCluster(tls string) string {
	return lines(
		"clusters:",
		"  - name: api",
		"    endpoints: [{url: 'https://10.0.0.7:8443'}]",
		"    tls: "+tls,
		"routes:",
		"  - {name: r, cluster: api}",
	)
}

// tlsListener is a config with one reverse listener whose tls section is
// tls, and extra listener lines.
func tlsListener(tls string, extra ...string) string {
	return lines(append([]string{
		"listeners:",
		"  - name: in",
		"    mode: reverse",
		"    tls: " + tls}, extra...)...) + validTail
}

func TestTLSConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"missing ca file", tlsCluster("{ca_file: " + missingCA + "}"),
			"zerohop.yaml:4: clusters[0].tls.ca_file: stat " + missingCA + ": no such file or directory"},
		{"ca file without certificates", tlsCluster("{ca_file: " + srvKey + "}"),
			"zerohop.yaml:4: clusters[0].tls.ca_file: no PEM certificates in " + srvKey},
		{"ca file with a bad certificate", tlsCluster("{ca_file: " + garbage + "}"),
			"zerohop.yaml:4: clusters[0].tls.ca_file: " + garbage + ": certificate 1: x509:"},
		{"ca file is a directory", tlsCluster("{ca_file: testdata}"),
			"zerohop.yaml:4: clusters[0].tls.ca_file: testdata is a directory, not a PEM file"},
		{"cert without key", tlsCluster("{cert_file: " + cliPEM + "}"),
			"zerohop.yaml:4: clusters[0].tls.key_file: required with cert_file"},
		{"key without cert", tlsCluster("{key_file: " + cliKey + "}"),
			"zerohop.yaml:4: clusters[0].tls.cert_file: required with key_file"},
		{"mismatched key", tlsCluster("{cert_file: " + cliPEM + ", key_file: " + srvKey + "}"),
			"zerohop.yaml:4: clusters[0].tls.cert_file: certificate and key do not load as a pair (" + cliPEM + ", " + srvKey + "): tls: private key does not match public key"},
		{"missing key file", tlsCluster("{cert_file: " + cliPEM + ", key_file: nokey.pem}"),
			"zerohop.yaml:4: clusters[0].tls.key_file: stat nokey.pem: no such file or directory"},
		{"bad min version", tlsCluster("{min_version: '1.1'}"),
			`zerohop.yaml:4: clusters[0].tls.min_version: invalid TLS version "1.1": must be "1.2" or "1.3"`},
		{"insecure with ca", tlsCluster("{ca_file: " + caPEM + ", insecure_skip_verify: true}"),
			"zerohop.yaml:4: clusters[0].tls.insecure_skip_verify: insecure_skip_verify ignores ca_file"},
		{"bad server name", tlsCluster("{server_name: 'a b'}"),
			`zerohop.yaml:4: clusters[0].tls.server_name: invalid server name "a b"`},
		{"h2c with https", lines("clusters:", "  - name: api", "    client: h2c", "    endpoints: [{url: 'https://a'}]", "routes: [{name: r, cluster: api}]"),
			`zerohop.yaml:4: clusters[0].endpoints[0].url: client h2c speaks HTTP/2 without TLS: endpoints must be http://`},
		{"h2c with tls", lines("clusters:", "  - name: api", "    client: h2c", "    endpoints: [{url: 'http://a'}]", "    tls: {}", "routes: [{name: r, cluster: api}]"),
			`zerohop.yaml:5: clusters[0].tls: client h2c speaks HTTP/2 without TLS`},
		{"listener without cert", tlsListener("{key_file: " + srvKey + "}"),
			"zerohop.yaml:4: listeners[0].tls.cert_file: required: the listener's certificate"},
		{"listener without key", tlsListener("{cert_file: " + srvPEM + "}"),
			"zerohop.yaml:4: listeners[0].tls.key_file: required: the private key of cert_file"},
		{"listener mismatched key", tlsListener("{cert_file: " + srvPEM + ", key_file: " + cliKey + "}"),
			"zerohop.yaml:4: listeners[0].tls.cert_file: certificate and key do not load as a pair"},
		{"listener bad client ca", tlsListener("{cert_file: " + srvPEM + ", key_file: " + srvKey + ", client_ca_file: " + missingCA + "}"),
			"zerohop.yaml:4: listeners[0].tls.client_ca_file: stat " + missingCA},
		{"listener bad min version", tlsListener("{cert_file: " + srvPEM + ", key_file: " + srvKey + ", min_version: 'TLS1.3'}"),
			`zerohop.yaml:4: listeners[0].tls.min_version: invalid TLS version "TLS1.3"`},
		{"listener fast path", tlsListener("{cert_file: "+srvPEM+", key_file: "+srvKey+"}", "    fast_path: true"),
			"zerohop.yaml:5: listeners[0].fast_path: the fast path does not serve TLS listeners"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("zerohop.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestTLSConfigValid(t *testing.T) {
	c, err := Parse("zerohop.yaml", []byte(lines(
		"listeners:",
		"  - {name: in, mode: reverse, tls: {cert_file: "+srvPEM+", key_file: "+srvKey+", client_ca_file: "+caPEM+"}}",
		"  - {name: plain, address: '127.0.0.1:8090', mode: reverse}",
		"clusters:",
		"  - name: api",
		"    endpoints: [{url: 'https://api.internal:8443'}]",
		"    tls: {ca_file: "+caPEM+", server_name: api.internal, cert_file: "+cliPEM+", key_file: "+cliKey+", min_version: '1.3'}",
		"  - {name: grpc, client: h2c, endpoints: [{url: 'http://10.0.0.9:50051'}]}",
		"routes:",
		"  - {name: r, cluster: api}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	in, plain := c.Listeners[0], c.Listeners[1]
	if in.FastPath || in.UsesFastPath() || !plain.FastPath || !plain.UsesFastPath() {
		t.Errorf("fast path: tls listener %v, plain %v; want off on TLS only", in.FastPath, plain.FastPath)
	}
	if in.TLS.MinVersion != TLS12 || c.Clusters[0].TLS.MinVersion != TLS13 {
		t.Errorf("min versions %q, %q; want the default 1.2 and 1.3", in.TLS.MinVersion, c.Clusters[0].TLS.MinVersion)
	}
	if c.Clusters[0].EffectiveClient() != ClientStd || c.Clusters[1].EffectiveClient() != ClientH2C {
		t.Errorf("clients %q, %q; want std (https) and h2c", c.Clusters[0].EffectiveClient(), c.Clusters[1].EffectiveClient())
	}
}
