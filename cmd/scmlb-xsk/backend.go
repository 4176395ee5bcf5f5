package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

var backendCommand = &cli.Command{
	Name:  "backend",
	Usage: "manage the backends of services",
	Subcommands: []*cli.Command{
		{
			Name:  "add",
			Usage: "add a backend to a service",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "service", Required: true, Usage: "service id"},
				&cli.StringFlag{Name: "address", Required: true, Usage: "IP[:PORT] or [IPv6]:PORT (port defaults to the service's)"},
				&cli.UintFlag{Name: "weight", Value: 1, Usage: "relative share of new flows"},
			},
			Action: func(c *cli.Context) error {
				sid, err := idArg(c, "service")
				if err != nil {
					return err
				}
				if c.Uint("weight") == 0 {
					return fmt.Errorf("--weight 0: want >= 1 (use `backend drain` to stop new flows)")
				}
				b, err := client(c).AddBackend(sid, c.String("address"), uint32(c.Uint("weight")))
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "backend %d added to service %d: %s weight %d\n", b.ID, b.ServiceID, b.Address, b.Weight)
				return nil
			},
		},
		{
			Name:  "get",
			Usage: "list backends",
			Flags: []cli.Flag{jsonFlag, &cli.StringFlag{Name: "service", Usage: "only this service id"}},
			Action: func(c *cli.Context) error {
				bs, err := client(c).Backends()
				if err != nil {
					return err
				}
				if c.IsSet("service") {
					sid, err := idArg(c, "service")
					if err != nil {
						return err
					}
					var keep []api.Backend
					for _, b := range bs {
						if b.ServiceID == sid {
							keep = append(keep, b)
						}
					}
					bs = keep
				}
				return show(c, bs, backendTable)
			},
		},
		{
			Name:   "drain",
			Usage:  "stop new flows to a backend; established ones continue",
			Flags:  []cli.Flag{&cli.StringFlag{Name: "id", Required: true}},
			Action: idAction("backend", "drained", func(c *cli.Context, id uint32) error { return client(c).DrainBackend(id) }),
		},
		{
			Name:   "delete",
			Usage:  "delete a drained backend",
			Flags:  []cli.Flag{&cli.StringFlag{Name: "id", Required: true}},
			Action: idAction("backend", "deleted", func(c *cli.Context, id uint32) error { return client(c).DeleteBackend(id) }),
		},
	},
}

// idAction runs fn on the --id of a noun ("backend", "rule", ...) and
// reports it done ("backend 3 drained").
func idAction(noun, done string, fn func(c *cli.Context, id uint32) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		id, err := idArg(c, "id")
		if err != nil {
			return err
		}
		if err := fn(c, id); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%s %d %s\n", noun, id, done)
		return nil
	}
}

func backendTable(w io.Writer, bs []api.Backend) {
	row(w, "ID", "SERVICE", "ADDRESS", "WEIGHT", "STATUS", "HEALTH", "MAC", "NEW FLOWS", "ACTIVE", "FLOWS", "PACKETS", "BYTES")
	for _, b := range bs {
		mac := b.MAC
		if mac == "" {
			mac = "unresolved"
		}
		row(w, b.ID, b.ServiceID, b.Address, b.Weight, b.Status, b.Health, mac, newFlows(b), b.ActiveConns, b.Flows, b.Packets, b.Bytes)
	}
}

// newFlows says whether Maglev gives the backend new flows, and if not why.
func newFlows(b api.Backend) string {
	switch {
	case b.NewFlows:
		return "yes"
	case b.Status == "drained":
		return "no (drained)"
	case b.Health == "unhealthy":
		return "no (unhealthy)"
	}
	return "no (no next hop)"
}
