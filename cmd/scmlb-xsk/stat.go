package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

var statCommand = &cli.Command{
	Name:  "stat",
	Usage: "show counters: protocols, XDP verdicts, forwarding, drops by reason, conntrack, services, sockets",
	Flags: []cli.Flag{jsonFlag},
	Action: func(c *cli.Context) error {
		st, err := client(c).Stats()
		if err != nil {
			return err
		}
		return show(c, st, statTables)
	},
}

func statTables(w io.Writer, st api.Stats) {
	row(w, "PROTOCOL", "PACKETS", "BYTES")
	for _, k := range sortedKeys(st.Protocols) {
		row(w, k, st.Protocols[k].Packets, st.Protocols[k].Bytes)
	}
	fmt.Fprintln(w)
	row(w, "XDP VERDICT", "PACKETS", "BYTES")
	for _, k := range sortedKeys(st.XDPVerdicts) {
		row(w, k, st.XDPVerdicts[k].Packets, st.XDPVerdicts[k].Bytes)
	}
	fmt.Fprintln(w)
	d := st.Dataplane
	row(w, "RX", "FORWARDED", "REPLIED", "NEW FLOWS", "REBUILT", "ECHO REPLIES", "ICMP TRANSLATED", "FRAG NEEDED SENT", "EXPRESS", "SNAT PORTS")
	row(w, d.RxPackets, d.Forwarded, d.Replied, d.NewFlows, d.RebuiltFlows, d.EchoReplies, d.ICMPTranslated, d.FragNeededSent,
		d.Express, d.SNATPortsInUse)
	fmt.Fprintln(w)
	row(w, "DROP REASON", "PACKETS")
	for _, k := range sortedKeys(st.Drops) {
		row(w, k, st.Drops[k])
	}
	fmt.Fprintln(w)
	ct := st.Conntrack
	row(w, "CONNTRACK", "CAPACITY", "INSERTS", "EVICTIONS", "EXPIRED", "COLLISIONS", "IGNORED RSTS")
	row(w, ct.Entries, ct.Capacity, ct.Inserts, ct.Evictions, ct.Expired, ct.Collisions, ct.IgnoredRSTs)
	fmt.Fprintln(w)
	row(w, "SERVICE", "BACKEND", "STATUS", "ACTIVE", "PACKETS", "BYTES")
	for _, s := range st.Services {
		name := s.VIP + "/" + s.Proto
		row(w, name, "*", "", s.ActiveConns, s.Packets, s.Bytes)
		for _, b := range s.Backends {
			row(w, name, b.Address, b.Status, b.ActiveConns, b.Packets, b.Bytes)
		}
	}
	fmt.Fprintln(w)
	row(w, "SOCKET", "QUEUE", "MODE", "SHARED UMEM", "RX", "TX", "KICKS", "TX RING FULL", "NO FRAME", "KICK ERRORS",
		"RX DROPPED", "FILL EMPTY", "INVALID")
	for _, s := range st.Sockets {
		row(w, s.Interface, s.Queue, s.Mode, yesNo(s.SharedUMEM), s.RxPackets, s.TxPackets, s.Kicks, s.TxRingFull,
			s.NoFreeFrame, s.KickErrors, s.RxDropped, s.FillRingEmpty, s.InvalidDescs)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
