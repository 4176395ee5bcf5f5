package dataplane

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

// A NAT or full-NAT flow saved by one engine is served by the next one
// (a restarted daemon): the backend's reply reaches the client as before,
// and a full-NAT flow's port stays taken. Flows whose backend is gone are
// dropped.
func TestSnapshotAcrossRestart(t *testing.T) {
	for _, mode := range []fwdmode.Mode{fwdmode.NAT, fwdmode.FullNAT} {
		e, w, up, down := modeWorker(t, mode, nil)
		seen := start(t, w, up, down, mode, 4242)
		var snap bytes.Buffer
		if n, err := e.WriteSnapshot(&snap); err != nil || n != 1 {
			t.Fatalf("%v: snapshot of %d flows: %v", mode, n, err)
		}
		e2, w2, up2, down2 := modeWorker(t, mode, nil)
		restored, dropped, err := e2.RestoreSnapshot(bytes.NewReader(snap.Bytes()), time.Now().UnixNano())
		if err != nil || restored != 1 || dropped != 0 {
			t.Fatalf("%v: restored %d dropped %d: %v", mode, restored, dropped, err)
		}
		if mode == fwdmode.FullNAT && e2.SNATPortsInUse() != 1 {
			t.Fatalf("restored full-NAT port not reserved: %d", e2.SNATPortsInUse())
		}
		reply := fixture.Frame{SrcMAC: backend1, DstMAC: fixture.LBDownMAC, Src: seen.Dst.IP(), Dst: seen.Src.IP(),
			Proto: fixture.ProtoTCP, SrcPort: seen.DstPort, DstPort: seen.SrcPort, TCPFlags: fixture.FlagSYN | fixture.FlagACK}
		down2.inject(reply.Bytes())
		w2.pump(down2)
		want := reply
		want.Src, want.SrcPort, want.Dst, want.DstPort, want.TTL = fixture.VIP, fixture.MySQLVPort, fixture.Client, 4242, 63
		want.SrcMAC, want.DstMAC = fixture.LBUpMAC, fixture.ClientMAC
		if got := one(t, up2); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%v: reply after restore\n%x\nwant\n%x", mode, got, want.Bytes())
		}
		if st := e2.Stats(); st.RebuiltFlows != 0 || st.NewFlows != 0 {
			t.Fatalf("%v: the flow was rebuilt, not restored: %+v", mode, st)
		}

		// The backend is gone in the new configuration: the flow is dropped.
		e3, _, _, _ := modeWorker(t, mode, func(c *Config) {
			c.Services[2].Backends[0].Addr = netip.MustParseAddr("10.0.2.99")
		})
		if restored, dropped, _ := e3.RestoreSnapshot(bytes.NewReader(snap.Bytes()), time.Now().UnixNano()); restored != 0 || dropped != 1 {
			t.Fatalf("%v: gone backend: restored %d dropped %d", mode, restored, dropped)
		}
		// The service changed mode: its flows are not this mode's.
		other := fwdmode.FullNAT
		if mode == fwdmode.FullNAT {
			other = fwdmode.NAT
		}
		e4, _, _, _ := modeWorker(t, other, nil)
		if restored, _, _ := e4.RestoreSnapshot(bytes.NewReader(snap.Bytes()), time.Now().UnixNano()); restored != 0 {
			t.Fatalf("%v: a flow restored into a %v service", mode, other)
		}
	}
}
