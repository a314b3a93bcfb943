package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

func newApp() *cli.App {
	return &cli.App{
		Name: "zerohop",
		// Lets `zerohop completion bash|zsh|fish` scripts ask for candidates.
		EnableBashCompletion: true,
		Usage:                "sidecar API gateway with a zero-hop shared-memory response cache",
		Version:              strings.TrimPrefix(buildVersion().String(), "zerohop "),
		Commands: []*cli.Command{
			newRunCommand(),
			newValidateCommand(),
			newVersionCommand(),
			newDemoCommand(),
			newBenchCommand(),
			newProbeCommand(),
			newInjectCommand(),
			newPurgeCommand(),
			newIPTablesCommand(),
			newInspectCommand(),
			newKeysCommand(),
			newTopCommand(),
			newLogCommand(),
			newCompletionCommand(),
		},
	}
}
