// Command configdoc writes the configuration reference (docs/config.md)
// from the config package. Run by `go generate ./config` and `make docs`.
//
//	configdoc -src config -o docs/config.md
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/zerohop/zerohop/internal/configdoc"
)

func main() {
	src := flag.String("src", ".", "the config package's directory")
	out := flag.String("o", "", "output file (default standard output)")
	flag.Parse()
	b, err := configdoc.Generate(os.DirFS(*src))
	if err == nil {
		if *out == "" {
			_, err = os.Stdout.Write(b)
		} else {
			err = os.WriteFile(*out, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}
