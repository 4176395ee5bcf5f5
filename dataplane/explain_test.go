package dataplane

import (
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

// Explain predicts what the worker then does: the backend and rewrite of
// a new flow, and after its first packet the tracked flow.
func TestExplainMatchesForwarding(t *testing.T) {
	for _, mode := range []fwdmode.Mode{fwdmode.NAT, fwdmode.FullNAT, fwdmode.DSRL2} {
		e, w, up, down := modeWorker(t, mode, nil)
		for port := uint16(5000); port < 5040; port++ {
			fwd := packet.Tuple{Src: packet.AddrFrom(fixture.Client), Dst: packet.AddrFrom(fixture.VIP), SrcPort: port,
				DstPort: fixture.HTTPPort, Proto: packet.ProtoTCP}
			if mode != fwdmode.NAT {
				fwd.DstPort = fixture.MySQLVPort
			}
			x := e.Explain(fwd)
			if x.Service == 0 || x.Tracked || x.Backend == 0 {
				t.Fatalf("%v: new flow %+v", mode, x)
			}
			syn := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
				Proto: fixture.ProtoTCP, SrcPort: port, DstPort: fwd.DstPort, TCPFlags: fixture.FlagSYN}
			up.inject(syn.Bytes())
			w.pump(up)
			var p packet.Packet
			f := one(t, down)
			packet.Decode(f, &p)
			if p.Dst != x.Dst || p.DstPort != x.DstPort || packet.MAC(f[0:6]) != x.DstMAC || packet.MAC(f[6:12]) != x.SrcMAC ||
				p.Src != x.Src || mode != fwdmode.FullNAT && p.SrcPort != x.SrcPort {
				t.Fatalf("%v: explained %+v, forwarded %v", mode, x, p.Tuple())
			}
			y := e.Explain(fwd)
			if !y.Tracked || y.Flow.Backend != x.Backend || y.Src != p.Src || y.SrcPort != p.SrcPort || y.Flow.Packets != 1 {
				t.Fatalf("%v: tracked flow explained %+v, forwarded %v", mode, y, p.Tuple())
			}
		}
		if x := e.Explain(packet.Tuple{Src: packet.AddrFrom(fixture.Client), Dst: packet.AddrFrom(fixture.VIP), SrcPort: 1,
			DstPort: 22, Proto: packet.ProtoTCP}); x.Service != 0 {
			t.Fatalf("no service at :22, explained %+v", x)
		}
	}
}
