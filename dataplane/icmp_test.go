package dataplane

import (
	"bytes"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

// start opens a MySQL flow from client port cport and returns the packet
// as the backend got it (after encapsulation, the inner one).
func start(t *testing.T, w *Worker, up, down *memQueue, mode fwdmode.Mode, cport uint16) packet.Packet {
	t.Helper()
	up.inject(mysqlSyn(cport).Bytes())
	w.pump(up)
	f := one(t, down)
	if mode == fwdmode.DSRIPIP {
		f = append(f[:14:14], f[34:]...)
	}
	var p packet.Packet
	packet.Decode(f, &p)
	return p
}

// A router on the client path says the VIP's reply was too big: the backend
// must hear it about its own packet.
func TestFragNeededReachesBackend(t *testing.T) {
	for _, mode := range []fwdmode.Mode{fwdmode.NAT, fwdmode.FullNAT, fwdmode.DSRL2, fwdmode.DSRIPIP} {
		e, w, up, down := modeWorker(t, mode, nil)
		seen := start(t, w, up, down, mode, 4000) // client -> backend as the backend saw it
		vipReply := fixture.Frame{Src: fixture.VIP, Dst: fixture.Client, Proto: fixture.ProtoTCP, SrcPort: fixture.MySQLVPort,
			DstPort: 4000, TCPFlags: fixture.FlagACK, FragOff: 0x4000, Payload: make([]byte, 1400)}
		icmp := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Router, Dst: fixture.VIP,
			Proto: fixture.ProtoICMP, ICMP: &fixture.ICMPHeader{Type: 3, Code: 4, Rest: 1400}, Payload: fixture.Quote(vipReply, 8)}
		up.inject(icmp.Bytes())
		w.pump(up)
		got := one(t, down)
		// What the backend sent (its view of the reply) is what it must see quoted.
		backendReply := vipReply
		backendReply.Src, backendReply.SrcPort = seen.Dst.IP(), seen.DstPort
		backendReply.Dst, backendReply.DstPort = seen.Src.IP(), seen.SrcPort
		want := icmp
		want.TTL, want.SrcMAC, want.DstMAC = 63, fixture.LBDownMAC, fixture.BackendMAC1
		want.Payload = fixture.Quote(backendReply, 8)
		switch mode {
		case fwdmode.NAT:
			want.Dst = fixture.Backend1
		case fwdmode.FullNAT:
			want.Src, want.Dst = lbDown, fixture.Backend1
		case fwdmode.DSRIPIP:
			got = append(got[:14:14], got[34:]...) // the outer header is TestDSRIPIP's business
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%v: to the backend\n%x\nwant\n%x", mode, got, want.Bytes())
		}
		if e.Stats().ICMPTranslated != 1 {
			t.Fatalf("%v: not counted", mode)
		}
	}
}

// A backend's port unreachable about a packet it got reaches the client from
// the VIP, about the client's own packet.
func TestUnreachableReachesClient(t *testing.T) {
	for _, mode := range []fwdmode.Mode{fwdmode.NAT, fwdmode.FullNAT} {
		e, w, up, down := modeWorker(t, mode, nil)
		seen := start(t, w, up, down, mode, 4100)
		asSeen := fixture.Frame{Src: seen.Src.IP(), Dst: seen.Dst.IP(), Proto: fixture.ProtoTCP,
			SrcPort: seen.SrcPort, DstPort: seen.DstPort, TCPFlags: fixture.FlagSYN}
		icmp := fixture.Frame{SrcMAC: backend1, DstMAC: fixture.LBDownMAC, Src: fixture.Backend1, Dst: seen.Src.IP(),
			Proto: fixture.ProtoICMP, ICMP: &fixture.ICMPHeader{Type: 3, Code: 3}, Payload: fixture.Quote(asSeen, 8)}
		down.inject(icmp.Bytes())
		w.pump(down)
		clientView := mysqlSyn(4100)
		want := fixture.Frame{SrcMAC: fixture.LBUpMAC, DstMAC: fixture.ClientMAC, Src: fixture.VIP, Dst: fixture.Client,
			TTL: 63, Proto: fixture.ProtoICMP, ICMP: &fixture.ICMPHeader{Type: 3, Code: 3}, Payload: fixture.Quote(clientView, 8)}
		if got := one(t, up); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%v: to the client\n%x\nwant\n%x", mode, got, want.Bytes())
		}
		// The same from the client side is not the backend's: dropped.
		up.inject(icmp.Bytes())
		w.pump(up)
		if len(up.takeTx())+len(down.takeTx()) != 0 || e.Stats().Drops["spoofed_reply"] != 1 {
			t.Fatalf("%v: an error from the client side passed: %v", mode, e.Stats().Drops)
		}
	}
}

// An error quoting no tracked flow is dropped and counted, never passed on.
func TestICMPWithoutFlow(t *testing.T) {
	e, w, up, down := newTestWorker(t, false)
	for _, c := range fixture.Cases() {
		if c.Name == "icmp frag-needed to vip" || c.Name == "icmp port unreachable from backend" {
			up.inject(c.Frame)
			down.inject(c.Frame)
		}
	}
	w.pump(up)
	w.pump(down)
	if len(up.takeTx())+len(down.takeTx()) != 0 {
		t.Fatal("an error without a flow was passed on")
	}
	if got := e.Stats().Drops["icmp_no_flow"]; got != 4 {
		t.Fatalf("icmp_no_flow = %d, want 4", got)
	}
}
