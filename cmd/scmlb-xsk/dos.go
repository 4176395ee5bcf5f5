package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

var dosCommand = &cli.Command{
	Name:  "dos",
	Usage: "manage DoS protection policies (per-source rate limits, enforced in XDP)",
	Subcommands: []*cli.Command{
		{
			Name:  "add",
			Usage: "add a policy: a source over the limit is dropped for the block time",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "protocol", Aliases: []string{"p"}, Required: true, Usage: "tcp, udp or icmp"},
				&cli.StringFlag{Name: "type", Aliases: []string{"t"}, Value: "any", Usage: "tcp: syn, ack, fin, rst or any"},
				&cli.UintFlag{Name: "limit", Aliases: []string{"l"}, Value: 256, Usage: "packets per second per source"},
				&cli.DurationFlag{Name: "block", Value: 10 * time.Second, Usage: "how long a source stays dropped"},
			},
			Action: func(c *cli.Context) error {
				block := c.Duration("block")
				if block < time.Second || block%time.Second != 0 {
					return fmt.Errorf("--block %s: want whole seconds, at least 1s", block)
				}
				p, err := client(c).AddDosPolicy(api.AddDosPolicyRequest{Proto: c.String("protocol"), Type: c.String("type"),
					LimitPPS: uint32(c.Uint("limit")), BlockSeconds: uint32(block / time.Second)})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "policy %d added: %s %s over %d packets/s per source blocks it for %ds\n",
					p.ID, p.Proto, p.Type, p.LimitPPS, p.BlockSeconds)
				return nil
			},
		},
		{
			Name:  "get",
			Usage: "list policies and the sources they block now",
			Flags: []cli.Flag{jsonFlag},
			Action: func(c *cli.Context) error {
				ps, err := client(c).DosPolicies()
				if err != nil {
					return err
				}
				return show(c, ps, dosTable)
			},
		},
		{
			Name:  "delete",
			Usage: "delete a policy and release the sources it blocks",
			Flags: []cli.Flag{&cli.StringFlag{Name: "id", Aliases: []string{"i"}, Required: true}},
			Action: idAction("policy", "deleted", func(c *cli.Context, id uint32) error {
				return client(c).DeleteDosPolicy(id)
			}),
		},
	},
}

func dosTable(w io.Writer, ps []api.DosPolicy) {
	row(w, "ID", "PROTO", "TYPE", "LIMIT", "BLOCK", "STATUS", "DROPPED", "BLOCKED SOURCES")
	for _, p := range ps {
		var srcs []string
		for _, b := range p.Blocked {
			srcs = append(srcs, fmt.Sprintf("%s (%.0fs left)", b.Address, b.RemainingSeconds))
		}
		blocked := strings.Join(srcs, ", ")
		if blocked == "" {
			blocked = "-"
		}
		row(w, p.ID, p.Proto, p.Type, fmt.Sprintf("%d/s", p.LimitPPS), fmt.Sprintf("%ds", p.BlockSeconds), p.Status,
			p.DroppedPackets, blocked)
	}
}
