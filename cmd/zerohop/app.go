package main

import (
	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newApp() *cli.App {
	return &cli.App{
		Name:    "zerohop",
		Usage:   "sidecar API gateway with a zero-hop shared-memory response cache",
		Version: version,
		Commands: []*cli.Command{
			newRunCommand(),
			newValidateCommand(),
			newVersionCommand(),
			newDemoCommand(),
			newBenchCommand(),
			newProbeCommand(),
			newInjectCommand(),
			newPurgeCommand(),
			newLogCommand(),
		},
	}
}
