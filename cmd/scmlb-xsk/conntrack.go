package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

var conntrackCommand = &cli.Command{
	Name:  "conntrack",
	Usage: "inspect tracked flows",
	Subcommands: []*cli.Command{{
		Name:  "get",
		Usage: "list tracked flows",
		Flags: []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			flows, err := client(c).Conntrack()
			if err != nil {
				return err
			}
			return show(c, flows, flowTable)
		},
	}},
}

func flowTable(w io.Writer, flows []api.Flow) {
	row(w, "PROTO", "CLIENT", "VIP", "BACKEND", "BACKEND SEES", "STATE", "IDLE", "PACKETS", "BYTES")
	for _, f := range flows {
		sees := f.Client
		switch {
		case f.SNAT != "":
			sees = f.SNAT
		case f.OneWay:
			sees = "(dsr)"
		}
		row(w, f.Proto, f.Client, f.VIP, fmt.Sprintf("%s (%d)", f.Backend, f.BackendID), sees, f.State,
			fmt.Sprintf("%.1fs", f.IdleSeconds), f.Packets, f.Bytes)
	}
}
