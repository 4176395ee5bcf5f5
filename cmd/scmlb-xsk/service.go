package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

var serviceCommand = &cli.Command{
	Name:  "service",
	Usage: "manage services (VIP:port/protocol)",
	Subcommands: []*cli.Command{
		{
			Name:  "add",
			Usage: "add a service",
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "vip", Required: true, Usage: "IP:PORT, [IPv6]:PORT for IPv6"},
				&cli.StringFlag{Name: "proto", Value: "tcp", Usage: "tcp or udp"},
				&cli.StringFlag{Name: "mode", Value: "nat", Usage: "forwarding mode: nat, fullnat, dsr-l2 or dsr-ipip (docs/operations.md, choosing a mode)"},
			}, healthFlags...),
			Action: func(c *cli.Context) error {
				h, err := healthFromFlags(c)
				if err != nil {
					return err
				}
				s, err := client(c).AddService(api.AddServiceRequest{VIP: c.String("vip"), Proto: c.String("proto"),
					Mode: c.String("mode"), Health: h})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "service %d added: %s/%s %s, health check %s\n", s.ID, s.VIP, s.Proto, s.Mode, healthSummary(s.Health))
				return nil
			},
		},
		{
			Name:  "get",
			Usage: "list services",
			Flags: []cli.Flag{jsonFlag},
			Action: func(c *cli.Context) error {
				svcs, err := client(c).Services()
				if err != nil {
					return err
				}
				return show(c, svcs, serviceTable)
			},
		},
		serviceHealthCommand,
		{
			Name:  "delete",
			Usage: "delete a service (its backends must be drained, or --force)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "id", Required: true},
				&cli.BoolFlag{Name: "force", Usage: "delete even with active backends, cutting their flows"},
			},
			Action: idAction("service", "deleted", func(c *cli.Context, id uint32) error {
				return client(c).DeleteService(id, c.Bool("force"))
			}),
		},
	},
}

func serviceTable(w io.Writer, svcs []api.Service) {
	row(w, "ID", "VIP", "PROTO", "MODE", "HEALTH CHECK", "BACKENDS", "ACTIVE", "PACKETS", "BYTES")
	for _, s := range svcs {
		check := "none"
		if s.Health != nil {
			check = s.Health.Type
		}
		row(w, s.ID, s.VIP, s.Proto, s.Mode, check, len(s.Backends), s.ActiveConns, s.Packets, s.Bytes)
	}
}
