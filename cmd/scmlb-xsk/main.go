// Command scmlb-xsk is an L4 load balancer with an XDP + AF_XDP fast path.
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// version is set at build time (-ldflags "-X main.version=v1.2.3");
// otherwise it comes from the module and VCS information Go records.
var version = ""

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "scmlb-xsk:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	app := &cli.App{
		Name:     "scmlb-xsk",
		Usage:    "L4 load balancer: XDP steering + AF_XDP userspace fast path",
		Version:  buildVersion(),
		Flags:    []cli.Flag{socketFlag},
		Commands: commands(),
		// --service lists backends with commas; never split flag values.
		DisableSliceFlagSeparator: true,
	}
	addSocketFlag(app.Commands)
	return app
}

func commands() []*cli.Command {
	return []*cli.Command{runCommand, decapCommand, serviceCommand, backendCommand, conntrackCommand, fwCommand, dosCommand,
		statCommand, dumpCommand, bgpCommand, applyCommand, planCommand, exportCommand, traceCommand, holdCommand}
}

// addSocketFlag lets --socket follow any command as well as precede it
// (`scmlb-xsk service get --socket X`); see socketPath.
func addSocketFlag(cmds []*cli.Command) {
	for _, c := range cmds {
		if len(c.Subcommands) > 0 {
			addSocketFlag(c.Subcommands)
			continue
		}
		if !hasFlag(c, "socket") && c.Name != "decap" { // decap talks to no daemon
			c.Flags = append(c.Flags, &cli.StringFlag{Name: "socket", Usage: "API socket of the daemon (as before the command)"})
		}
	}
}

func hasFlag(c *cli.Command, name string) bool {
	for _, f := range c.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value[:min(len(s.Value), 12)]
		case "vcs.modified":
			if s.Value == "true" {
				v += "+dirty"
			}
		}
	}
	return v + " " + info.GoVersion
}
