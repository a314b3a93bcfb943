package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/config"
)

func newValidateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check a configuration file; errors name file, line and field",
		ArgsUsage: "FILE",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("validate takes one FILE")
			}
			cfg, err := config.Load(c.Args().First())
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			for _, w := range cfg.Warnings() {
				fmt.Fprintf(c.App.ErrWriter, "%s: warning: %s\n", c.Args().First(), w)
			}
			fmt.Fprintf(c.App.Writer, "%s: ok (%d listeners, %d clusters, %d routes)\n",
				c.Args().First(), len(cfg.Listeners), len(cfg.Clusters), len(cfg.Routes))
			return nil
		},
	}
}
