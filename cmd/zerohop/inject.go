package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/inject"
)

func newInjectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inject",
		Usage:     "add the zerohop sidecar, shared volume and mounts to Pod/Deployment/… manifests (like istioctl kube-inject)",
		ArgsUsage: "[FILE|-]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Value: "ghcr.io/zerohop/zerohop:latest", EnvVars: []string{"ZEROHOP_IMAGE"}},
			&cli.StringFlag{Name: "configmap", Value: "zerohop", Usage: "ConfigMap holding zerohop.yaml (\"\" runs on defaults)"},
			&cli.StringFlag{Name: "config", Usage: "the zerohop.yaml the sidecar will use, for paths, ports and sizes (default: embedded defaults)"},
			&cli.BoolFlag{Name: "transparent", Usage: "add the init container redirecting the app's outbound TCP to the config's transparent listener (docs/transparent.md)"},
			&cli.StringFlag{Name: "init-image", Value: "ghcr.io/zerohop/zerohop-init:latest", EnvVars: []string{"ZEROHOP_INIT_IMAGE"}, Usage: "image of that init container (deploy/Dockerfile.init)"},
			&cli.StringFlag{Name: "intercept-ports", Value: "80", Usage: "destination `PORTS` redirected with --transparent"},
			&cli.StringFlag{Name: "exclude-cidrs", Usage: "destinations never redirected with --transparent (`CIDRS`)"},
		},
		Action: func(c *cli.Context) error {
			var in []byte
			var err error
			switch f := c.Args().First(); f {
			case "", "-":
				in, err = io.ReadAll(os.Stdin)
			default:
				in, err = os.ReadFile(f)
			}
			if err != nil {
				return err
			}
			cfg := config.Default()
			if p := c.String("config"); p != "" {
				if cfg, err = config.Load(p); err != nil {
					return err
				}
			}
			res, err := inject.Stream(in, inject.Options{Image: c.String("image"), ConfigMap: c.String("configmap"), Config: cfg,
				Transparent: c.Bool("transparent"), InitImage: c.String("init-image"), InterceptPorts: c.String("intercept-ports"),
				ExcludeCIDRs: c.String("exclude-cidrs")})
			if err != nil {
				if name := c.Args().First(); name != "" && name != "-" {
					return fmt.Errorf("%s: %w", name, err)
				}
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(c.App.ErrWriter, "zerohop inject: warning:", w)
			}
			_, err = c.App.Writer.Write(res.Output)
			return err
		},
	}
}
