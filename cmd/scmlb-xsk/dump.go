package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

var dumpCommand = &cli.Command{
	Name:  "dump",
	Usage: "capture packets the load balancer sees (XDP and/or workers, with verdicts) to pcapng or stdout",
	Description: `Stops after --count packets or --duration, whichever comes first.
   The pcapng file reads with tcpdump -r; each packet's comment holds the stage and verdict
   ("xdp steer_service", "worker forward", "worker drop:no_flow"), which tshark shows.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "write", Aliases: []string{"w"}, Usage: "write pcapng to this file instead of printing"},
		&cli.StringFlag{Name: "at", Value: "both", Usage: "xdp, worker or both"},
		&cli.StringFlag{Name: "host", Usage: "only packets from or to this address (IPv4 or IPv6)"},
		&cli.UintFlag{Name: "port", Usage: "only packets from or to this port"},
		&cli.StringFlag{Name: "proto", Usage: "only tcp, udp or icmp"},
		&cli.IntFlag{Name: "count", Aliases: []string{"c"}, Value: 100, Usage: "stop after this many packets"},
		&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "stop after this long"},
		&cli.IntFlag{Name: "snaplen", Value: 2048, Usage: "bytes kept per packet"},
	},
	Action: func(c *cli.Context) error {
		req := api.DumpRequest{At: c.String("at"), Proto: c.String("proto"), Count: c.Int("count"),
			Duration: c.Duration("duration"), Snaplen: c.Int("snaplen")}
		if c.Uint("port") > 65535 {
			return fmt.Errorf("--port %d: want 1-65535", c.Uint("port"))
		}
		req.Port = uint16(c.Uint("port"))
		if h := c.String("host"); h != "" {
			a, err := netip.ParseAddr(h)
			if err != nil {
				return fmt.Errorf("--host %q: %w", h, err)
			}
			req.Host = a
		}
		if path := c.String("write"); path != "" {
			return dumpToFile(c, req, path)
		}
		return dumpLive(c, req)
	},
}

func dumpToFile(c *cli.Context, req api.DumpRequest, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = client(c).Dump(req, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	f, err = os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n := 0
	if err := api.ReadPcapng(f, func(api.DumpPacket) error { n++; return nil }); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%d packets written to %s\n", n, path)
	return nil
}

func dumpLive(c *cli.Context, req api.DumpRequest) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(client(c).Dump(req, pw)) }()
	return api.ReadPcapng(pr, func(p api.DumpPacket) error {
		fmt.Fprintf(c.App.Writer, "%s %-6s %-6s %-20s %s, %d bytes\n", p.Time.Format("15:04:05.000000"), p.Interface,
			p.Stage, p.Verdict, api.Summary(p.Data), p.OrigLen)
		return nil
	})
}
