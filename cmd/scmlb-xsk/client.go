package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

var socketFlag = &cli.StringFlag{Name: "socket", Value: api.DefaultSocket, EnvVars: []string{"SCMLB_XSK_SOCKET"},
	Usage: "API socket of the daemon"}

var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"}

func client(c *cli.Context) *api.Client { return api.NewClient(socketPath(c)) }

// socketPath is the --socket given closest to the command (after it, or
// before it), else the global default or $SCMLB_XSK_SOCKET.
func socketPath(c *cli.Context) string {
	lineage := c.Lineage()
	for _, ctx := range lineage {
		if slices.Contains(ctx.LocalFlagNames(), "socket") {
			return ctx.String("socket")
		}
	}
	return lineage[len(lineage)-1].String("socket")
}

// show prints v as JSON with --json, else through the table renderer.
func show[T any](c *cli.Context, v T, table func(io.Writer, T)) error {
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw, v)
	return tw.Flush()
}

func row(w io.Writer, cols ...any) {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(s, "\t"))
}

func idArg(c *cli.Context, name string) (uint32, error) {
	v := c.String(name)
	id, err := strconv.ParseUint(v, 10, 32)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("--%s %q: want a positive id (see the get command)", name, v)
	}
	return uint32(id), nil
}
