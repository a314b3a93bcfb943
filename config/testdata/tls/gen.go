//go:build ignore

// gen writes the certificates config's tests load (go run gen.go): only
// their parsing matters, so they are made once and committed.
package main

import (
	"log"
	"os"

	"github.com/zerohop/zerohop/internal/testcert"
)

func main() {
	ca, err := testcert.NewCA("zerohop config test CA")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := ca.Server(2, "api.internal")
	if err != nil {
		log.Fatal(err)
	}
	cli, err := ca.Client(3, "zerohop")
	if err != nil {
		log.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"ca.pem": ca.PEM, "server.pem": srv.CertPEM, "server-key.pem": srv.KeyPEM,
		"client.pem": cli.CertPEM, "client-key.pem": cli.KeyPEM,
		"garbage.pem": []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"),
	} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
