package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/daemon"

	"github.com/urfave/cli/v2"
)

// holdCommand is what a daemon stopping with --restart-hold leaves behind:
// it inherits the XDP links' descriptors (keeping the programs attached,
// dropping what they would steer) and exits after the hold, or when the
// next daemon, having taken the links over, tells it to.
var holdCommand = &cli.Command{
	Name:   daemon.HoldCommand,
	Hidden: true,
	Flags:  []cli.Flag{&cli.DurationFlag{Name: "for", Value: 10 * time.Second}},
	Action: func(c *cli.Context) error {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		select {
		case <-sig:
		case <-time.After(c.Duration("for")):
		}
		return nil
	},
}
