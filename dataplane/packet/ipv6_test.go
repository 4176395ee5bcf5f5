package packet

import (
	"bytes"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

func TestDecode6(t *testing.T) {
	f := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client6, Dst: fixture.VIP6,
		Proto: fixture.ProtoTCP, SrcPort: 40000, DstPort: 80, TCPFlags: fixture.FlagSYN, TTL: 7,
		Ext6:    []fixture.Ext6{fixture.Pad6(fixture.ExtHopByHop), fixture.Pad6(fixture.ExtRouting), fixture.Pad6(fixture.ExtDestOpts)},
		Payload: []byte("hello")}
	p := decoded(t, f.Bytes())
	want := Tuple{Src: AddrFrom(fixture.Client6), Dst: AddrFrom(fixture.VIP6), SrcPort: 40000, DstPort: 80, Proto: ProtoTCP}
	if !p.V6 || p.Tuple() != want || p.L4 != 14+40+24 || p.TTL != 7 || p.Len() != 40+24+20+5 || p.Seg.Len != 6 {
		t.Fatalf("decoded %+v", p)
	}
	if p.Src.Is4() || !AddrFrom(fixture.Client).Is4() || p.Src.IP() != fixture.Client6 {
		t.Fatal("address family")
	}
	for _, c := range []struct {
		name string
		ext  []fixture.Ext6
		cut  int
		want Result
	}{
		{"fragment header", []fixture.Ext6{fixture.Fragment6(0, true)}, 0, ErrFragment},
		{"atomic fragment after options", []fixture.Ext6{fixture.Pad6(fixture.ExtHopByHop), fixture.Fragment6(0, false)}, 0, ErrFragment},
		{"4 headers", []fixture.Ext6{fixture.Pad6(60), fixture.Pad6(60), fixture.Pad6(60), fixture.Pad6(60)}, 0, OK},
		{"5 headers", []fixture.Ext6{fixture.Pad6(60), fixture.Pad6(60), fixture.Pad6(60), fixture.Pad6(60), fixture.Pad6(60)}, 0, ErrBadHeader},
		{"extension header cut", []fixture.Ext6{fixture.Pad6(60)}, 14 + 40 + 4, ErrTruncated},
		{"no room for tcp", nil, 14 + 40 + 10, ErrTruncated},
		{"header cut", nil, 14 + 30, ErrTruncated},
	} {
		g := f
		g.Ext6 = c.ext
		b := g.Bytes()
		if c.cut > 0 {
			b = b[:c.cut]
		}
		var q Packet
		if r := Decode(b, &q); r != c.want {
			t.Errorf("%s: %v, want %v", c.name, r, c.want)
		}
	}
	// A payload length claiming more than the frame holds.
	b := f.Bytes()
	b[14+5] += 100
	if r := Decode(b, new(Packet)); r != ErrTruncated {
		t.Errorf("long payload length: %v", r)
	}
	// IPv4 in an IPv6 EtherType, and the reverse.
	b = fixture.Frame{Src: fixture.Client, Dst: fixture.VIP, Proto: fixture.ProtoTCP}.Bytes()
	b[12], b[13] = 0x86, 0xdd
	b = append(b, make([]byte, 40)...)
	if r := Decode(b, new(Packet)); r != ErrNotIP {
		t.Errorf("version 4 under 0x86dd: %v", r)
	}
}

// The incremental IPv6 rewrite (no header checksum, L4 checksum over the
// pseudo-header) gives the frame built from scratch.
func TestRewrite6MatchesRebuild(t *testing.T) {
	for _, proto := range []uint8{6, 17} {
		f := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client6, Dst: fixture.VIP6,
			Proto: fixture.ProtoTCP, SrcPort: 40002, DstPort: 3307, TCPFlags: fixture.FlagSYN, Payload: []byte("select 1"),
			Ext6: []fixture.Ext6{fixture.Pad6(fixture.ExtDestOpts)}}
		if proto == 17 {
			f.Proto = fixture.ProtoUDP
		}
		frame := f.Bytes()
		p := decoded(t, frame)
		p.SetDst(AddrFrom(fixture.Backend62), 3306)
		p.SetSrc(v6("2001:db8:5::1"), 1024)
		p.DecTTL()
		p.SetMACs(MAC(fixture.LBDownMAC), MAC(fixture.BackendMAC2))
		want := f
		want.Dst, want.DstPort = fixture.Backend62, 3306
		want.Src, want.SrcPort = v6("2001:db8:5::1").IP(), 1024
		want.TTL = 63
		want.SrcMAC, want.DstMAC = fixture.LBDownMAC, fixture.BackendMAC2
		if !bytes.Equal(frame, want.Bytes()) {
			t.Fatalf("proto %d rewritten\n%x\nwant\n%x", proto, frame, want.Bytes())
		}
	}
}

func TestICMPv6(t *testing.T) {
	// A router's packet-too-big about the VIP's reply, sent on to backend 1.
	reply := fixture.Frame{Src: fixture.VIP6, Dst: fixture.Client6, Proto: fixture.ProtoTCP, SrcPort: 80, DstPort: 40000,
		TCPFlags: fixture.FlagACK, Payload: make([]byte, 1400)}
	in := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Router6, Dst: fixture.VIP6,
		Proto: fixture.ProtoICMPv6, ICMP: &fixture.ICMPHeader{Type: 2, Rest: 1400}, Payload: fixture.Quote(reply, 8)}
	frame := in.Bytes()
	p := decoded(t, frame)
	wantIn := Tuple{Src: AddrFrom(fixture.VIP6), Dst: AddrFrom(fixture.Client6), SrcPort: 80, DstPort: 40000, Proto: ProtoTCP}
	if !p.ICMP.Error || p.ICMP.Type != ICMP6TooBig || p.ICMP.Inner != wantIn || p.ICMP.InnerL3 != 62 || p.ICMP.InnerL4 != 102 {
		t.Fatalf("packet-too-big: %+v", p.ICMP)
	}
	p.SetDstAddr(AddrFrom(fixture.Backend61))
	p.SetInnerSrc(AddrFrom(fixture.Backend61), 8080)
	p.FixICMP()
	backendReply := reply
	backendReply.Src, backendReply.SrcPort = fixture.Backend61, 8080
	want := in
	want.Dst, want.Payload = fixture.Backend61, fixture.Quote(backendReply, 8)
	if !bytes.Equal(frame, want.Bytes()) {
		t.Fatalf("translated\n%x\nwant\n%x", frame, want.Bytes())
	}

	// Echo reply.
	req := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client6, Dst: fixture.VIP6,
		Proto: fixture.ProtoICMPv6, TTL: 60, ICMP: &fixture.ICMPHeader{Type: 128, Rest: 0x00070001}, Payload: []byte("ping")}
	frame = req.Bytes()
	decoded(t, frame).EchoReply(MAC(fixture.LBUpMAC))
	wantEcho := fixture.Frame{SrcMAC: fixture.LBUpMAC, DstMAC: fixture.ClientMAC, Src: fixture.VIP6, Dst: fixture.Client6,
		Proto: fixture.ProtoICMPv6, ICMP: &fixture.ICMPHeader{Type: 129, Rest: 0x00070001}, Payload: []byte("ping")}
	if !bytes.Equal(frame, wantEcho.Bytes()) {
		t.Fatalf("echo reply\n%x\nwant\n%x", frame, wantEcho.Bytes())
	}

	// Our own packet-too-big quotes up to 1232 bytes (the whole error fits 1280).
	big := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client6, Dst: fixture.VIP6,
		Proto: fixture.ProtoTCP, SrcPort: 40000, DstPort: 80, TCPFlags: fixture.FlagACK, Payload: make([]byte, 1400)}
	orig := big.Bytes()
	buf := make([]byte, 2048)
	copy(buf[256:], orig)
	n := decoded(t, buf[256:256+len(orig)]).TooBig(1280, AddrFrom(fixture.VIP6), MAC(fixture.LBUpMAC))
	wantPTB := fixture.Frame{SrcMAC: fixture.LBUpMAC, DstMAC: fixture.ClientMAC, Src: fixture.VIP6, Dst: fixture.Client6,
		Proto: fixture.ProtoICMPv6, ICMP: &fixture.ICMPHeader{Type: 2, Rest: 1280}, Payload: orig[14 : 14+1232]}
	if got := buf[256 : 256+n]; n != 14+1280 || !bytes.Equal(got, wantPTB.Bytes()) {
		t.Fatalf("packet-too-big (%d bytes)\n%x\nwant\n%x", n, got, wantPTB.Bytes())
	}
}

func TestHashKeepsIPv4(t *testing.T) {
	// The hash of an IPv4 tuple is what it was with 4-byte addresses
	// (recorded before IPv6), so mixed-version instances agree.
	tup := Tuple{Src: v4(10, 0, 1, 2), Dst: v4(10, 0, 100, 1), SrcPort: 40000, DstPort: 80, Proto: ProtoTCP}
	if got := tup.Hash(0x5c4d1b); got != 0xe744ece954612b62 {
		t.Fatalf("hash %#x", got)
	}
	a, b := tup, tup
	a.Src, b.Src = v6("2001:db8::1"), v6("2001:db8:1::1")
	if a.Hash(1) == b.Hash(1) {
		t.Fatal("upper address bits are not hashed")
	}
}
