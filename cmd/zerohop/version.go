package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/shm"
)

func newVersionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the Go version and the cache file format version",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "zerohop %s (%s, cache format %d.%d)\n", version, runtime.Version(), shm.MajorVersion, shm.MinorVersion)
			return nil
		},
	}
}
