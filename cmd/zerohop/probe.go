package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"
)

// newProbeCommand is for Kubernetes exec probes: the admin endpoint is
// loopback-only by default, which kubelet's HTTP probes cannot reach.
func newProbeCommand() *cli.Command {
	return &cli.Command{
		Name:  "probe",
		Usage: "exit 0 if URL answers 200 (for exec probes against the loopback admin endpoint)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: "http://127.0.0.1:9901/readyz", EnvVars: []string{"ZEROHOP_PROBE_URL"}},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Second},
		},
		Action: func(c *cli.Context) error {
			client := &http.Client{Timeout: c.Duration("timeout"), Transport: &http.Transport{Proxy: nil}}
			resp, err := client.Get(c.String("url"))
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return cli.Exit(fmt.Sprintf("%s: %s", c.String("url"), resp.Status), 1)
			}
			return nil
		},
	}
}
