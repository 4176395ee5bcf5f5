package main

import (
	"fmt"
	"net/netip"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/decap"
)

var decapCommand = &cli.Command{
	Name:  "decap",
	Usage: "on a dsr-ipip backend: strip the IPIP header of packets to this host (root; runs until SIGINT/SIGTERM)",
	Description: `The backend side of dsr-ipip services: an XDP program that strips the outer
   header of IPIP packets addressed to this host, so the inner packet (client -> VIP)
   reaches the stack. The VIP must be configured on the backend (loopback, with
   arp_ignore=1 and arp_announce=2). Example:
   scmlb-xsk decap --if eth0 --vip 10.0.100.1`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "if", Required: true, Usage: "interface facing the load balancer"},
		&cli.StringSliceFlag{Name: "vip", Usage: "decapsulate only packets to this VIP (repeat; default: any)"},
		&cli.StringFlag{Name: "xdp-mode", Value: "native", Usage: "native or generic"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
	},
	Action: func(c *cli.Context) error {
		log, err := newLogger(c.String("log-level"))
		if err != nil {
			return err
		}
		defer log.Sync()
		mode, err := bpf.ParseMode(c.String("xdp-mode"))
		if err != nil {
			return err
		}
		var vips []netip.Addr
		for _, s := range c.StringSlice("vip") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return fmt.Errorf("--vip %q: want an IPv4 address", s)
			}
			vips = append(vips, a)
		}
		ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return decap.Run(ctx, decap.Options{Interface: c.String("if"), VIPs: vips, Mode: mode}, log)
	},
}
