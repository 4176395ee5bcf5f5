// Command scmlb-xsk is an L4 load balancer with an XDP + AF_XDP fast path.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:     "scmlb-xsk",
		Usage:    "L4 load balancer: XDP steering + AF_XDP userspace fast path",
		Flags:    []cli.Flag{socketFlag},
		Commands: commands,
		// --service lists backends with commas; never split flag values.
		DisableSliceFlagSeparator: true,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "scmlb-xsk:", err)
		os.Exit(1)
	}
}

var commands = []*cli.Command{runCommand, serviceCommand, backendCommand, conntrackCommand, fwCommand, dosCommand, statCommand, dumpCommand}
