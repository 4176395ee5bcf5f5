package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

var bgpCommand = &cli.Command{
	Name:  "bgp",
	Usage: "announce the VIPs to routers over BGP (docs/scaleout.md)",
	Subcommands: []*cli.Command{
		{
			Name:  "get",
			Usage: "show the BGP settings, the sessions and the announced prefixes",
			Flags: []cli.Flag{jsonFlag},
			Action: func(c *cli.Context) error {
				b, err := client(c).BGP()
				if err != nil {
					return err
				}
				return show(c, b, bgpTable)
			},
		},
		{
			Name:  "set",
			Usage: "set the BGP settings (saved in the state file) and restart the speaker with them",
			Flags: []cli.Flag{
				&cli.UintFlag{Name: "asn", Required: true, Usage: "our ASN"},
				&cli.StringFlag{Name: "router-id", Required: true, Usage: "router id (an IPv4 address of this host)"},
				&cli.StringSliceFlag{Name: "peer", Required: true, Usage: "router ADDR[:ASN] (no ASN: iBGP); repeat for more"},
				&cli.UintFlag{Name: "listen-port", Usage: "also accept sessions on this port (0: only connect out)"},
				&cli.DurationFlag{Name: "hold", Value: 9 * time.Second, Usage: "hold time offered to the routers"},
			},
			Action: func(c *cli.Context) error {
				s, err := bgpFlags(c, "")
				if err != nil {
					return err
				}
				if err := client(c).SetBGP(s); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "bgp: AS%d, router id %s, peers %s, hold %ds\n", s.ASN, s.RouterID,
					strings.Join(s.Peers, " "), s.HoldSeconds)
				return nil
			},
		},
		{
			Name:  "off",
			Usage: "stop announcing: the speaker stops and routers drop this instance's routes",
			Action: func(c *cli.Context) error {
				if err := client(c).DeleteBGP(); err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, "bgp off")
				return nil
			},
		},
	},
}

// bgpFlags reads the BGP settings from the flags named prefix+"asn",
// "router-id", "peer", "listen-port" and "hold" (`bgp set` has no prefix,
// `run` has "bgp-"), checking what the flags' types let through.
func bgpFlags(c *cli.Context, prefix string) (api.BGPSettings, error) {
	if asn := c.Uint(prefix + "asn"); asn > math.MaxUint32 {
		return api.BGPSettings{}, fmt.Errorf("--%sasn %d: want 1 to 4294967295", prefix, asn)
	}
	if port := c.Uint(prefix + "listen-port"); port > 65535 {
		return api.BGPSettings{}, fmt.Errorf("--%slisten-port %d: want 0 to 65535", prefix, port)
	}
	hold := c.Duration(prefix + "hold")
	if hold < 3*time.Second || hold > 65535*time.Second || hold%time.Second != 0 {
		return api.BGPSettings{}, fmt.Errorf("--%shold %s: want whole seconds, 3s to 65535s (RFC 4271)", prefix, hold)
	}
	return api.BGPSettings{ASN: uint32(c.Uint(prefix + "asn")), RouterID: c.String(prefix + "router-id"),
		Peers: c.StringSlice(prefix + "peer"), ListenPort: uint16(c.Uint(prefix + "listen-port")),
		HoldSeconds: uint32(hold / time.Second)}, nil
}

func bgpTable(w io.Writer, b api.BGP) {
	if b.Settings == nil {
		fmt.Fprintln(w, "bgp off (scmlb-xsk bgp set, or run --bgp-asn)")
		return
	}
	s := b.Settings
	row(w, "ASN", "ROUTER ID", "HOLD", "LISTEN PORT", "ANNOUNCING")
	listen := "-"
	if s.ListenPort != 0 {
		listen = fmt.Sprint(s.ListenPort)
	}
	row(w, s.ASN, s.RouterID, fmt.Sprintf("%ds", s.HoldSeconds), listen, b.Announcing)
	fmt.Fprintln(w)
	row(w, "PEER", "ASN", "STATE", "UPTIME")
	for _, p := range b.Peers {
		row(w, p.Address, p.ASN, p.State, time.Duration(p.UptimeSeconds)*time.Second)
	}
	fmt.Fprintln(w)
	row(w, "ANNOUNCED")
	for _, p := range b.Announced {
		row(w, p)
	}
}
