package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/declare"
)

var fileFlag = &cli.StringFlag{Name: "file", Aliases: []string{"f"}, Required: true,
	Usage: "declarative state (YAML, docs/examples/lb.yaml); - reads standard input"}

var applyCommand = &cli.Command{
	Name:  "apply",
	Usage: "move the daemon to the state a YAML file describes, in one step (all or nothing)",
	Flags: []cli.Flag{fileFlag, jsonFlag, &cli.BoolFlag{Name: "dry-run", Usage: "only print the plan (as plan does)"}},
	Action: func(c *cli.Context) error {
		return applyFile(c, c.Bool("dry-run"))
	},
}

var planCommand = &cli.Command{
	Name:   "plan",
	Usage:  "print what apply would change, the share of each service's new flows that would move, and the flows pinned to removed backends",
	Flags:  []cli.Flag{fileFlag, jsonFlag},
	Action: func(c *cli.Context) error { return applyFile(c, true) },
}

var exportCommand = &cli.Command{
	Name:  "export",
	Usage: "write the current state as YAML (what apply takes)",
	Action: func(c *cli.Context) error {
		y, err := client(c).Export()
		if err != nil {
			return err
		}
		_, err = io.WriteString(c.App.Writer, y)
		return err
	},
}

func applyFile(c *cli.Context, dryRun bool) error {
	y, err := readDoc(c.String("file"))
	if err != nil {
		return err
	}
	// Checked here too, so a typo is named before the daemon is asked.
	if _, err := declare.Parse(bytes.NewReader(y)); err != nil {
		return fmt.Errorf("%s: %w", c.String("file"), err)
	}
	res, err := client(c).Apply(string(y), dryRun)
	if err != nil {
		return err
	}
	return show(c, res, planTable)
}

func readDoc(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, declare.MaxSize+1))
	}
	return os.ReadFile(path)
}

func planTable(w io.Writer, r api.ApplyResult) {
	if len(r.Changes) == 0 {
		fmt.Fprintln(w, "no changes")
	}
	for _, ch := range r.Changes {
		fmt.Fprintln(w, ch)
	}
	if len(r.Services) > 0 {
		fmt.Fprintln(w)
		row(w, "SERVICE", "STATUS", "NEW FLOWS MOVED", "FLOWS ON REMOVED BACKENDS")
		for _, s := range r.Services {
			row(w, s.Service, s.Status, fmt.Sprintf("%.1f%%", 100*s.MovedShare), s.PinnedFlows)
		}
	}
	switch {
	case r.Applied:
		fmt.Fprintln(w, "\napplied")
	case len(r.Changes) > 0:
		fmt.Fprintln(w, "\nnot applied (plan only)")
	}
}
