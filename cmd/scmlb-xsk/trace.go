package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

var traceCommand = &cli.Command{
	Name: "trace",
	Usage: "explain what the load balancer does with a flow, from the live tables (the XDP step runs the " +
		"loaded program on a synthetic packet: it is counted like one)",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "proto", Value: "tcp", Usage: "tcp or udp"},
		&cli.StringFlag{Name: "src", Required: true, Usage: "the client, IP:PORT ([IPv6]:PORT)"},
		&cli.StringFlag{Name: "dst", Required: true, Usage: "the VIP, IP:PORT ([IPv6]:PORT)"},
		jsonFlag,
	},
	Action: func(c *cli.Context) error {
		tr, err := client(c).Trace(api.TraceRequest{Proto: c.String("proto"), Src: c.String("src"), Dst: c.String("dst")})
		if err != nil {
			return err
		}
		return show(c, tr, traceSteps)
	},
}

func traceSteps(w io.Writer, tr api.Trace) {
	row(w, "flow", tr.Flow)
	row(w, "1 firewall", tr.Firewall)
	row(w, "2 dos", tr.DoS)
	row(w, "3 xdp", tr.XDPAction+": "+tr.XDP)
	if tr.ServiceID == 0 {
		row(w, "4 service", "none at this destination")
	} else {
		row(w, "4 service", fmt.Sprintf("%d %s (%s)", tr.ServiceID, tr.Service, tr.Mode))
		if f := tr.Conntrack; f != nil {
			row(w, "5 conntrack", fmt.Sprintf("%s, backend %s (%d), idle %.1fs, %d packets, %d bytes", f.State, f.Backend,
				f.BackendID, f.IdleSeconds, f.Packets, f.Bytes))
		} else {
			row(w, "5 conntrack", "no entry: a new flow")
		}
		if tr.BackendID != 0 {
			row(w, "6 backend", fmt.Sprintf("%s (%d), by %s", tr.Backend, tr.BackendID, tr.Pick))
		}
		if r := tr.Rewrite; r != nil {
			row(w, "7 rewrite", fmt.Sprintf("%s -> %s, MAC %s -> %s", r.Src, r.Dst, r.SrcMAC, r.DstMAC))
		}
	}
	row(w, "verdict", tr.Verdict)
}
