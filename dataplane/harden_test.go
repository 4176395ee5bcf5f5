package dataplane

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

func httpSyn(ttl uint8) fixture.Frame {
	return fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoTCP, SrcPort: 40000, DstPort: fixture.HTTPPort, TCPFlags: fixture.FlagSYN, TTL: ttl}
}

// Bug 12 of issue 9: the load balancer is a hop. TTL is decremented with
// the checksum; a packet that arrives with TTL 0 or 1 is dropped and counted.
func TestTTL(t *testing.T) {
	e, w, up, down := newTestWorker(t, false)
	zero := httpSyn(1).Bytes() // fixture TTL 0 means the default; patch it
	zero[22], zero[24], zero[25] = 0, 0, 0
	c := ^fixture.Sum(0, zero[14:34])
	zero[24], zero[25] = byte(c>>8), byte(c)
	up.inject(zero)
	up.inject(httpSyn(1).Bytes())
	w.pump(up)
	if got := len(down.takeTx()); got != 0 {
		t.Fatalf("%d packets with TTL <= 1 forwarded", got)
	}
	if d := e.Stats().Drops["ttl_exceeded"]; d != 2 {
		t.Fatalf("ttl_exceeded = %d, want 2", d)
	}
	up.inject(httpSyn(2).Bytes())
	w.pump(up)
	out := down.takeTx()
	var p packet.Packet
	if len(out) != 1 || packet.Decode(out[0], &p) != packet.OK || p.TTL != 1 {
		t.Fatalf("TTL 2 packet: %d forwarded, TTL %d", len(out), p.TTL)
	}
	if err := fixture.VerifyChecksums(out[0]); err != nil {
		t.Fatal(err)
	}
}

// backendReply is a data segment from b:port to the client.
func backendReply(mac [6]byte, b netip.Addr, port, clientPort uint16) fixture.Frame {
	return fixture.Frame{SrcMAC: mac, DstMAC: fixture.LBDownMAC, Src: b, Dst: fixture.Client, Proto: fixture.ProtoTCP,
		SrcPort: port, DstPort: clientPort, TCPFlags: fixture.FlagACK, Seq: 5000, Payload: []byte("data")}
}

// Bug 7 of issue 9: a "reply" that comes in on the client side (two-arm)
// or from another MAC than the backend's next hop (one-arm) is dropped.
func TestSpoofedReplies(t *testing.T) {
	for _, oneArm := range []bool{false, true} {
		e, w, up, down := newTestWorker(t, oneArm)
		up.inject(httpSyn(64).Bytes())
		w.pump(up)
		fwd := down.takeTx()
		var p packet.Packet
		packet.Decode(fwd[0], &p)
		be := p.Dst.IP()
		mac := map[netip.Addr][6]byte{fixture.Backend1: fixture.BackendMAC1, fixture.Backend2: fixture.BackendMAC2}[be]
		// From the client side, or from the client's MAC.
		spoof := backendReply(fixture.ClientMAC, be, 80, 40000)
		up.inject(spoof.Bytes())
		w.pump(up)
		if !oneArm {
			down.inject(spoof.Bytes()) // right side, wrong MAC: fine in two-arm
			w.pump(down)
		}
		got := up.takeTx()
		if wantFwd := map[bool]int{false: 1, true: 0}[oneArm]; len(got) != wantFwd {
			t.Fatalf("oneArm=%v: %d spoofed replies sent to the client, want %d", oneArm, len(got), wantFwd)
		}
		if d := e.Stats().Drops["spoofed_reply"]; d != 1 {
			t.Fatalf("oneArm=%v: spoofed_reply = %d, want 1", oneArm, d)
		}
		down.inject(backendReply(mac, be, 80, 40000).Bytes())
		w.pump(down)
		if got := up.takeTx(); len(got) != 1 {
			t.Fatalf("oneArm=%v: the real reply was not sent", oneArm)
		}
	}
}

// Bug 15 of issue 9: after a restart conntrack is empty; a backend's packet
// of a flow that Maglev maps to that backend rebuilds the flow.
func TestRebuildFromReply(t *testing.T) {
	e, w, up, down := newTestWorker(t, false)
	cfg := fixtureConfig()
	cfg.ClientHops = ClientHops{OnLink: []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24")}}
	if err := e.Reconfig(cfg); err != nil {
		t.Fatal(err)
	}
	tb := e.cfg.Load()
	svc, _ := tb.services.get(packet.AddrFrom(fixture.VIP), fixture.HTTPPort, fixture.ProtoTCP)
	fwd := packet.Tuple{Src: packet.AddrFrom(fixture.Client), Dst: packet.AddrFrom(fixture.VIP), SrcPort: 40000,
		DstPort: fixture.HTTPPort, Proto: packet.ProtoTCP}
	picked := svc.backends[svc.maglev.Lookup(fwd.Hash(flowHashSeed))]
	other := svc.backends[0]
	if other == picked {
		other = svc.backends[1]
	}
	macOf := func(b *backend) [6]byte {
		return map[packet.Addr][6]byte{packet.AddrFrom(fixture.Backend1): fixture.BackendMAC1,
			packet.AddrFrom(fixture.Backend2): fixture.BackendMAC2}[b.addr]
	}
	reply := func(b *backend) []byte {
		return backendReply(macOf(b), b.addr.IP(), 80, 40000).Bytes()
	}

	// The client is on-link but its MAC is not known yet: ask for it.
	down.inject(reply(picked))
	w.pump(down)
	if len(up.takeTx()) != 0 || e.Stats().Drops["no_client_hop"] != 1 {
		t.Fatalf("sent without a client MAC: %v", e.Stats().Drops)
	}
	select {
	case a := <-e.HopRequests():
		if a != packet.AddrFrom(fixture.Client) {
			t.Fatalf("hop requested for %v", a)
		}
	default:
		t.Fatal("no next-hop request for the client")
	}

	cfg.ClientHops.Neighbours = map[netip.Addr]packet.MAC{fixture.Client: fixture.ClientMAC}
	if err := e.Reconfig(cfg); err != nil {
		t.Fatal(err)
	}
	down.inject(reply(other)) // not Maglev's pick: not ours to guess
	w.pump(down)
	if len(up.takeTx()) != 0 || e.Stats().Drops["no_flow"] != 1 {
		t.Fatalf("a reply from the backend Maglev does not pick was forwarded: %v", e.Stats().Drops)
	}
	down.inject(reply(picked))
	w.pump(down)
	out := up.takeTx()
	if len(out) != 1 {
		t.Fatalf("rebuilt flow's reply not sent: %v", e.Stats().Drops)
	}
	want := backendReply(macOf(picked), picked.addr.IP(), 80, 40000)
	want.Src, want.SrcMAC, want.DstMAC, want.TTL = fixture.VIP, fixture.LBUpMAC, fixture.ClientMAC, 63
	if !bytes.Equal(out[0], want.Bytes()) {
		t.Fatalf("rebuilt reply\n%x\nwant\n%x", out[0], want.Bytes())
	}
	if st := e.Stats(); st.RebuiltFlows != 1 || st.NewFlows != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The client's next packet finds the flow, on the same backend.
	up.inject(fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoTCP, SrcPort: 40000, DstPort: 80, TCPFlags: fixture.FlagACK}.Bytes())
	w.pump(up)
	var p packet.Packet
	if got := down.takeTx(); len(got) != 1 || packet.Decode(got[0], &p) != packet.OK || p.Dst != picked.addr {
		t.Fatal("the client's packet did not follow the rebuilt flow")
	}
	if e.Stats().NewFlows != 1 {
		t.Fatal("the client's packet made another flow")
	}
}

func TestClientHops(t *testing.T) {
	h := compileHops(ClientHops{
		Neighbours: map[netip.Addr]packet.MAC{netip.MustParseAddr("10.0.1.2"): {1}},
		OnLink:     []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24")},
		Gateway:    packet.MAC{9},
	})
	for a, want := range map[string]packet.MAC{"10.0.1.2": {1}, "10.0.1.3": {}, "198.51.100.7": {9}} {
		m, ok := h.mac(packet.AddrFrom(netip.MustParseAddr(a)))
		if m != want || ok != (want != packet.MAC{}) {
			t.Errorf("%s: %v %v, want %v", a, m, ok, want)
		}
	}
	none := compileHops(ClientHops{})
	if _, ok := none.mac(packet.Addr4([]byte{1, 2, 3, 4})); ok {
		t.Error("no gateway, no neighbour: a MAC was made up")
	}
}

// Bug 2 of issue 9: a change rebuilds only the Maglev tables of the
// services it touches; backends are ordered by address, not id.
func TestCompileReusesUnchangedMaglev(t *testing.T) {
	e, _, _, _ := newTestWorker(t, false)
	before := e.cfg.Load()
	cfg := fixtureConfig()
	cfg.Services[0].Backends[1].Weight = 3 // http only
	cfg.Services[1].Backends[0].MAC = packet.MAC{7}
	if err := e.Reconfig(cfg); err != nil {
		t.Fatal(err)
	}
	after := e.cfg.Load()
	for _, s := range after.services.all() {
		old, _ := before.services.get(s.vip, s.port, s.proto)
		same := s.maglev == old.maglev
		if want := s.id != 1; same != want {
			t.Errorf("service %d: Maglev table reused=%v, want %v", s.id, same, want)
		}
	}
	// Same backends in another order and with other ids: the same table.
	rev := fixtureConfig()
	bs := rev.Services[0].Backends
	bs[0], bs[1] = bs[1], bs[0]
	bs[0].ID, bs[1].ID = 11, 12
	other := NewEngine(e.ct, e.log)
	if err := other.Reconfig(rev); err != nil {
		t.Fatal(err)
	}
	a, _ := before.services.get(packet.AddrFrom(fixture.VIP), 80, fixture.ProtoTCP)
	b, _ := other.cfg.Load().services.get(packet.AddrFrom(fixture.VIP), 80, fixture.ProtoTCP)
	for h := uint64(0); h < 10000; h++ {
		if a.backends[a.maglev.Lookup(h)].addr != b.backends[b.maglev.Lookup(h)].addr {
			t.Fatal("backend order changed the table")
		}
	}
}
