package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

var fwCommand = &cli.Command{
	Name:  "fw",
	Usage: "manage firewall rules (deny, enforced in XDP)",
	Subcommands: []*cli.Command{
		{
			Name:  "add",
			Usage: "add a deny rule",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "network", Aliases: []string{"n"}, Value: "0.0.0.0/0", Usage: "source CIDR"},
				&cli.StringFlag{Name: "protocol", Aliases: []string{"t"}, Value: "any", Usage: "any, tcp, udp or icmp"},
				&cli.StringFlag{Name: "src-port", Aliases: []string{"s"}, Value: "any", Usage: "PORT or FROM-TO"},
				&cli.StringFlag{Name: "dst-port", Aliases: []string{"d"}, Value: "any", Usage: "PORT or FROM-TO"},
			},
			Action: func(c *cli.Context) error {
				r, err := client(c).AddFirewallRule(api.AddFirewallRuleRequest{Network: c.String("network"),
					Proto: c.String("protocol"), SrcPorts: c.String("src-port"), DstPorts: c.String("dst-port")})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "rule %d added: deny %s from %s src ports %s dst ports %s\n",
					r.ID, r.Proto, r.Network, r.SrcPorts, r.DstPorts)
				return nil
			},
		},
		{
			Name:  "get",
			Usage: "list rules with their drop counters",
			Flags: []cli.Flag{jsonFlag},
			Action: func(c *cli.Context) error {
				rules, err := client(c).FirewallRules()
				if err != nil {
					return err
				}
				return show(c, rules, fwTable)
			},
		},
		{
			Name:  "delete",
			Usage: "delete a rule",
			Flags: []cli.Flag{&cli.StringFlag{Name: "id", Aliases: []string{"i"}, Required: true}},
			Action: idAction("rule", "deleted", func(c *cli.Context, id uint32) error {
				return client(c).DeleteFirewallRule(id)
			}),
		},
	},
}

func fwTable(w io.Writer, rules []api.FirewallRule) {
	row(w, "ID", "NETWORK", "PROTO", "SRC PORTS", "DST PORTS", "DROPPED", "BYTES")
	for _, r := range rules {
		row(w, r.ID, r.Network, r.Proto, r.SrcPorts, r.DstPorts, r.DroppedPackets, r.DroppedBytes)
	}
}
