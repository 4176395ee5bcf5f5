package dataplane

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

var (
	snatAddr6 = netip.MustParseAddr("2001:db8:2::100")
	lbDown6   = netip.MustParseAddr("2001:db8:2::1")
)

// modeWorker6 is modeWorker for the IPv6 MySQL service (VIP6:3307, one
// backend: Backend61:3306).
func modeWorker6(t *testing.T, mode fwdmode.Mode, mut func(*Config)) (*Engine, *Worker, *memQueue, *memQueue) {
	t.Helper()
	return modeWorkerOn(t, 5, mode, mut)
}

func mysqlSyn6(port uint16) fixture.Frame {
	return fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client6, Dst: fixture.VIP6,
		Proto: fixture.ProtoTCP, SrcPort: port, DstPort: fixture.MySQLVPort, TCPFlags: fixture.FlagSYN,
		Ext6: []fixture.Ext6{fixture.Pad6(fixture.ExtDestOpts)}}
}

// Every mode but dsr-ipip forwards IPv6 and translates the reply back, byte
// for byte as if built from scratch (hop limit down, checksums right).
func TestForwardAndReply6(t *testing.T) {
	for _, mode := range []fwdmode.Mode{fwdmode.NAT, fwdmode.FullNAT, fwdmode.DSRL2} {
		e, w, up, down := modeWorker6(t, mode, nil)
		syn := mysqlSyn6(5000)
		up.inject(syn.Bytes())
		w.pump(up)
		got := one(t, down)
		var p packet.Packet
		if packet.Decode(got, &p) != packet.OK {
			t.Fatalf("%v: forwarded frame does not decode", mode)
		}
		want := syn
		want.TTL, want.SrcMAC, want.DstMAC = 63, fixture.LBDownMAC, fixture.BackendMAC1
		if mode != fwdmode.DSRL2 {
			want.Dst, want.DstPort = fixture.Backend61, fixture.MySQLPort
		}
		if mode == fwdmode.FullNAT {
			if p.Src != packet.AddrFrom(snatAddr6) {
				t.Fatalf("full-NAT source %v, want %v", p.Src, snatAddr6)
			}
			want.Src, want.SrcPort = snatAddr6, p.SrcPort
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%v: forwarded\n%x\nwant\n%x", mode, got, want.Bytes())
		}
		if mode.DSR() {
			continue
		}
		reply := fixture.Frame{SrcMAC: backend1, DstMAC: fixture.LBDownMAC, Src: fixture.Backend61, Dst: p.Src.IP(),
			Proto: fixture.ProtoTCP, SrcPort: fixture.MySQLPort, DstPort: p.SrcPort, TCPFlags: fixture.FlagSYN | fixture.FlagACK}
		down.inject(reply.Bytes())
		w.pump(down)
		wantBack := reply
		wantBack.Src, wantBack.SrcPort, wantBack.Dst, wantBack.DstPort, wantBack.TTL = fixture.VIP6, fixture.MySQLVPort, fixture.Client6, 5000, 63
		wantBack.SrcMAC, wantBack.DstMAC = fixture.LBUpMAC, fixture.ClientMAC
		if len(up.tx) != 1 {
			t.Fatalf("%v: reply not sent: %v", mode, e.Stats().Drops)
		}
		if back := one(t, up); !bytes.Equal(back, wantBack.Bytes()) {
			t.Fatalf("%v: reply\n%x\nwant\n%x", mode, back, wantBack.Bytes())
		}
	}
}

// Flows spread over the IPv6 backends and stick.
func TestSpread6(t *testing.T) {
	_, w, up, down := newTestWorker(t, false)
	per := map[packet.Addr]int{}
	for port := uint16(1000); port < 1200; port++ {
		f := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client6, Dst: fixture.VIP6,
			Proto: fixture.ProtoUDP, SrcPort: port, DstPort: fixture.UDPPort, Payload: []byte("x")}
		up.inject(f.Bytes())
		w.pump(up)
		out := one(t, down)
		if err := fixture.VerifyChecksums(out); err != nil {
			t.Fatal(err)
		}
		var p packet.Packet
		packet.Decode(out, &p)
		per[p.Dst]++
	}
	if len(per) != 2 || per[packet.AddrFrom(fixture.Backend61)] < 70 || per[packet.AddrFrom(fixture.Backend62)] < 70 {
		t.Fatalf("spread %v", per)
	}
}

func TestEcho6(t *testing.T) {
	e, w, up, _ := newTestWorker(t, false)
	req := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client6, Dst: fixture.VIP6,
		Proto: fixture.ProtoICMPv6, ICMP: &fixture.ICMPHeader{Type: 128, Rest: 0x00010002}, Payload: []byte("ping")}
	up.inject(req.Bytes())
	w.pump(up)
	want := fixture.Frame{SrcMAC: fixture.LBUpMAC, DstMAC: fixture.ClientMAC, Src: fixture.VIP6, Dst: fixture.Client6,
		Proto: fixture.ProtoICMPv6, ICMP: &fixture.ICMPHeader{Type: 129, Rest: 0x00010002}, Payload: []byte("ping")}
	if got := one(t, up); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("echo reply\n%x\nwant\n%x", got, want.Bytes())
	}
	if e.Stats().EchoReplies != 1 {
		t.Fatal("echo reply not counted")
	}
}

// A packet larger than the backend link is answered with packet-too-big
// from the VIP; a router's packet-too-big about the VIP's reply reaches the
// backend about its own packet; a backend's port unreachable reaches the
// client from the VIP.
func TestICMPv6Errors(t *testing.T) {
	for _, mode := range []fwdmode.Mode{fwdmode.NAT, fwdmode.FullNAT} {
		e, w, up, down := modeWorker6(t, mode, func(c *Config) { c.BackendMTU = 1400 })
		syn := mysqlSyn6(4000)
		up.inject(syn.Bytes())
		w.pump(up)
		var seen packet.Packet
		packet.Decode(one(t, down), &seen)

		big := syn
		big.TCPFlags, big.Payload = fixture.FlagACK, make([]byte, 1400)
		up.inject(big.Bytes())
		w.pump(up)
		got := one(t, up)
		want := fixture.Frame{SrcMAC: fixture.LBUpMAC, DstMAC: fixture.ClientMAC, Src: fixture.VIP6, Dst: fixture.Client6,
			Proto: fixture.ProtoICMPv6, ICMP: &fixture.ICMPHeader{Type: 2, Rest: 1400}, Payload: big.Bytes()[14 : 14+1232]}
		if !bytes.Equal(got, want.Bytes()) || e.Stats().FragNeededSent != 1 {
			t.Fatalf("%v: packet-too-big\n%x\nwant\n%x", mode, got, want.Bytes())
		}

		vipReply := fixture.Frame{Src: fixture.VIP6, Dst: fixture.Client6, Proto: fixture.ProtoTCP, SrcPort: fixture.MySQLVPort,
			DstPort: 4000, TCPFlags: fixture.FlagACK, Payload: make([]byte, 1400)}
		ptb := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Router6, Dst: fixture.VIP6,
			Proto: fixture.ProtoICMPv6, ICMP: &fixture.ICMPHeader{Type: 2, Rest: 1280}, Payload: fixture.Quote(vipReply, 8)}
		up.inject(ptb.Bytes())
		w.pump(up)
		backendReply := vipReply
		backendReply.Src, backendReply.SrcPort = seen.Dst.IP(), seen.DstPort
		backendReply.Dst, backendReply.DstPort = seen.Src.IP(), seen.SrcPort
		wantPTB := ptb
		wantPTB.TTL, wantPTB.SrcMAC, wantPTB.DstMAC = 63, fixture.LBDownMAC, fixture.BackendMAC1
		wantPTB.Payload, wantPTB.Dst = fixture.Quote(backendReply, 8), fixture.Backend61
		if mode == fwdmode.FullNAT {
			wantPTB.Src = lbDown6
		}
		if got := one(t, down); !bytes.Equal(got, wantPTB.Bytes()) {
			t.Fatalf("%v: packet-too-big to the backend\n%x\nwant\n%x", mode, got, wantPTB.Bytes())
		}

		asSeen := fixture.Frame{Src: seen.Src.IP(), Dst: seen.Dst.IP(), Proto: fixture.ProtoTCP,
			SrcPort: seen.SrcPort, DstPort: seen.DstPort, TCPFlags: fixture.FlagSYN}
		unreach := fixture.Frame{SrcMAC: backend1, DstMAC: fixture.LBDownMAC, Src: fixture.Backend61, Dst: seen.Src.IP(),
			Proto: fixture.ProtoICMPv6, ICMP: &fixture.ICMPHeader{Type: 1, Code: 4}, Payload: fixture.Quote(asSeen, 8)}
		down.inject(unreach.Bytes())
		w.pump(down)
		clientView := mysqlSyn6(4000)
		clientView.Ext6 = nil
		wantUnreach := fixture.Frame{SrcMAC: fixture.LBUpMAC, DstMAC: fixture.ClientMAC, Src: fixture.VIP6, Dst: fixture.Client6,
			TTL: 63, Proto: fixture.ProtoICMPv6, ICMP: &fixture.ICMPHeader{Type: 1, Code: 4}, Payload: fixture.Quote(clientView, 8)}
		if got := one(t, up); !bytes.Equal(got, wantUnreach.Bytes()) {
			t.Fatalf("%v: unreachable to the client\n%x\nwant\n%x", mode, got, wantUnreach.Bytes())
		}
	}
}

func TestFamiliesDoNotMix(t *testing.T) {
	e, _, _, _ := newTestWorker(t, false)
	for name, mut := range map[string]func(*Config){
		"IPv4 backend":    func(c *Config) { c.Services[3].Backends[0].Addr = fixture.Backend1 },
		"IPv6 backend":    func(c *Config) { c.Services[0].Backends[0].Addr = fixture.Backend61 },
		"IPv6 dsr-ipip":   func(c *Config) { c.Services[3].Mode = fwdmode.DSRIPIP },
		"IPv4-mapped VIP": func(c *Config) { c.Services[3].VIP = netip.AddrFrom16(fixture.VIP.As16()) },
	} {
		c := fixtureConfig()
		mut(&c)
		if err := e.Reconfig(c); err == nil || !strings.Contains(err.Error(), "service") && !strings.Contains(err.Error(), "backend") {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
}

// After a restart an IPv6 flow is rebuilt from the backend's packet like
// an IPv4 one; an off-link IPv6 client is reached through the IPv6
// default gateway, not the IPv4 one.
func TestRebuild6(t *testing.T) {
	e, w, up, down := newTestWorker(t, false)
	gw4, gw6 := packet.MAC{2, 0, 0, 0, 4, 4}, packet.MAC{2, 0, 0, 0, 6, 6}
	cfg := fixtureConfig()
	cfg.ClientHops = ClientHops{OnLink: []netip.Prefix{netip.MustParsePrefix("2001:db8:7::/64")}, Gateway: gw4, Gateway6: gw6}
	if err := e.Reconfig(cfg); err != nil {
		t.Fatal(err)
	}
	svc, _ := e.cfg.Load().services.get(packet.AddrFrom(fixture.VIP6), fixture.HTTPPort, fixture.ProtoTCP)
	fwd := packet.Tuple{Src: packet.AddrFrom(fixture.Client6), Dst: packet.AddrFrom(fixture.VIP6), SrcPort: 40000,
		DstPort: fixture.HTTPPort, Proto: packet.ProtoTCP}
	picked := svc.backends[svc.maglev.Lookup(fwd.Hash(flowHashSeed))]
	mac := map[packet.Addr][6]byte{packet.AddrFrom(fixture.Backend61): fixture.BackendMAC1,
		packet.AddrFrom(fixture.Backend62): fixture.BackendMAC2}[picked.addr]
	reply := fixture.Frame{SrcMAC: mac, DstMAC: fixture.LBDownMAC, Src: picked.addr.IP(), Dst: fixture.Client6,
		Proto: fixture.ProtoTCP, SrcPort: 80, DstPort: 40000, TCPFlags: fixture.FlagACK}
	down.inject(reply.Bytes())
	w.pump(down)
	want := reply
	want.Src, want.SrcMAC, want.DstMAC, want.TTL = fixture.VIP6, fixture.LBUpMAC, gw6, 63
	if got := one(t, up); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("rebuilt reply\n%x\nwant\n%x (drops %v)", got, want.Bytes(), e.Stats().Drops)
	}
	if st := e.Stats(); st.RebuiltFlows != 1 {
		t.Fatalf("stats %+v", st)
	}
}
