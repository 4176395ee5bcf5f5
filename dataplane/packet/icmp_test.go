package packet

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

var zero = uint16(0)

func decoded(t *testing.T, frame []byte) *Packet {
	t.Helper()
	p := &Packet{}
	if r := Decode(frame, p); r != OK {
		t.Fatalf("Decode = %v", r)
	}
	return p
}

func TestDecodeICMP(t *testing.T) {
	var tooBig, unreach, echo fixture.Case
	for _, c := range fixture.Cases() {
		switch c.Name {
		case "icmp frag-needed to vip":
			tooBig = c
		case "icmp port unreachable from backend":
			unreach = c
		case "icmp echo to vip":
			echo = c
		}
	}
	p := decoded(t, tooBig.Frame)
	want := Tuple{Src: AddrFrom(fixture.VIP), Dst: AddrFrom(fixture.Client), SrcPort: 80, DstPort: 40000, Proto: ProtoTCP}
	if !p.ICMP.Error || p.ICMP.Type != 3 || p.ICMP.Code != 4 || p.ICMP.Inner != want || p.ICMP.InnerL3 != 42 {
		t.Fatalf("frag-needed: %+v", p.ICMP)
	}
	if p = decoded(t, unreach.Frame); p.ICMP.Inner.Dst != AddrFrom(fixture.Backend1) || p.ICMP.Inner.DstPort != 80 {
		t.Fatalf("unreachable: %+v", p.ICMP)
	}
	if p = decoded(t, echo.Frame); p.ICMP.Error || p.ICMP.Type != ICMPEchoRequest {
		t.Fatalf("echo: %+v", p.ICMP)
	}
}

// Translating an error rewrites the outer addresses and the quoted packet;
// the result equals the same error built from scratch.
func TestTranslateICMPMatchesRebuild(t *testing.T) {
	// A router's frag-needed about the VIP's reply, sent on to backend1.
	reply := fixture.Frame{Src: fixture.VIP, Dst: fixture.Client, Proto: fixture.ProtoTCP, SrcPort: 80, DstPort: 40000,
		TCPFlags: fixture.FlagACK, FragOff: 0x4000, Payload: make([]byte, 1400)}
	in := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Router, Dst: fixture.VIP,
		Proto: fixture.ProtoICMP, ICMP: &fixture.ICMPHeader{Type: 3, Code: 4, Rest: 1400}, Payload: fixture.Quote(reply, 8)}
	frame := in.Bytes()
	p := decoded(t, frame)
	p.SetDstAddr(AddrFrom(fixture.Backend1))
	p.SetInnerSrc(AddrFrom(fixture.Backend1), 8080)
	p.FixICMP()
	p.SetMACs(MAC(fixture.LBDownMAC), MAC(fixture.BackendMAC1))
	backendReply := reply
	backendReply.Src, backendReply.SrcPort = fixture.Backend1, 8080
	want := in
	want.Dst, want.Payload = fixture.Backend1, fixture.Quote(backendReply, 8)
	want.SrcMAC, want.DstMAC = fixture.LBDownMAC, fixture.BackendMAC1
	if !bytes.Equal(frame, want.Bytes()) {
		t.Fatalf("translated\n%x\nwant\n%x", frame, want.Bytes())
	}

	// A backend's port unreachable about a forwarded UDP packet, whose quote
	// holds the UDP checksum, back to the client from the VIP.
	fwd := fixture.Frame{Src: fixture.Client, Dst: fixture.Backend1, Proto: fixture.ProtoUDP, SrcPort: 40001, DstPort: 9090,
		Payload: []byte("ping")}
	in = fixture.Frame{Src: fixture.Backend1, Dst: fixture.Client, Proto: fixture.ProtoICMP,
		ICMP: &fixture.ICMPHeader{Type: 3, Code: 3}, Payload: fixture.Quote(fwd, 12)}
	frame = in.Bytes()
	p = decoded(t, frame)
	p.SetSrcAddr(AddrFrom(fixture.VIP))
	p.SetInnerDst(AddrFrom(fixture.VIP), 53)
	p.FixICMP()
	clientView := fwd
	clientView.Dst, clientView.DstPort = fixture.VIP, 53
	want = in
	want.Src, want.Payload = fixture.VIP, fixture.Quote(clientView, 12)
	if !bytes.Equal(frame, want.Bytes()) {
		t.Fatalf("translated\n%x\nwant\n%x", frame, want.Bytes())
	}
}

func TestEchoReply(t *testing.T) {
	req := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoICMP, TTL: 60, ICMP: &fixture.ICMPHeader{Type: 8, Rest: 0x00070001}, Payload: []byte("ping ping")}
	frame := req.Bytes()
	decoded(t, frame).EchoReply(MAC(fixture.LBUpMAC))
	want := fixture.Frame{SrcMAC: fixture.LBUpMAC, DstMAC: fixture.ClientMAC, Src: fixture.VIP, Dst: fixture.Client,
		Proto: fixture.ProtoICMP, ICMP: &fixture.ICMPHeader{Type: 0, Rest: 0x00070001}, Payload: []byte("ping ping")}
	if !bytes.Equal(frame, want.Bytes()) {
		t.Fatalf("echo reply\n%x\nwant\n%x", frame, want.Bytes())
	}
}

// ICMPError quotes as much of the original as 576 bytes allow, in place.
func TestICMPError(t *testing.T) {
	big := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoTCP, SrcPort: 40000, DstPort: 80, TCPFlags: fixture.FlagACK, FragOff: 0x4000, Payload: make([]byte, 1400)}
	for i := range big.Payload {
		big.Payload[i] = byte(i)
	}
	orig := big.Bytes()
	buf := make([]byte, 2048)
	copy(buf[256:], orig)
	p := decoded(t, buf[256:256+len(orig)])
	n := p.ICMPError(ICMPUnreachable, CodeFragNeeded, 1400, AddrFrom(fixture.VIP), MAC(fixture.LBUpMAC))
	quote := orig[14 : 14+548]
	want := fixture.Frame{SrcMAC: fixture.LBUpMAC, DstMAC: fixture.ClientMAC, Src: fixture.VIP, Dst: fixture.Client,
		Proto: fixture.ProtoICMP, TOS: 0xc0, ID: &zero, ICMP: &fixture.ICMPHeader{Type: 3, Code: 4, Rest: 1400}, Payload: quote}
	if got := buf[256 : 256+n]; !bytes.Equal(got, want.Bytes()) || n != 590 {
		t.Fatalf("error (%d bytes)\n%x\nwant\n%x", n, got, want.Bytes())
	}
	// A short original is quoted whole.
	small := big
	small.Payload = []byte("x")
	orig = small.Bytes()
	copy(buf[256:], orig)
	p = decoded(t, buf[256:256+len(orig)])
	n = p.ICMPError(ICMPUnreachable, CodeFragNeeded, 1400, AddrFrom(fixture.VIP), MAC(fixture.LBUpMAC))
	if n != 14+28+len(orig)-14 || !bytes.Equal(buf[256+42:256+n], orig[14:]) {
		t.Fatalf("short quote: %d bytes", n)
	}
}

func TestEncapIPIP(t *testing.T) {
	inner := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoTCP, SrcPort: 40000, DstPort: 80, TCPFlags: fixture.FlagSYN, TOS: 0x10, FragOff: 0x4000}
	orig := inner.Bytes()
	buf := make([]byte, 2048)
	copy(buf[256:], orig)
	p := decoded(t, buf[256:256+len(orig)])
	src := v4(172, 16, 1, 2)
	f := p.EncapIPIP(buf, 256, src, AddrFrom(fixture.Backend1), MAC(fixture.LBDownMAC), MAC(fixture.BackendMAC1))
	want := fixture.Frame{SrcMAC: fixture.LBDownMAC, DstMAC: fixture.BackendMAC1, Src: src.IP(), Dst: fixture.Backend1,
		Proto: 4, TOS: 0x10, FragOff: 0x4000, ID: &zero, Payload: orig[14:]}
	if !bytes.Equal(f, want.Bytes()) || &f[0] != &buf[256-IPIPOverhead] {
		t.Fatalf("encapsulated\n%x\nwant\n%x", f, want.Bytes())
	}
}

func TestClampMSS(t *testing.T) {
	syn := fixture.Frame{Src: fixture.Client, Dst: fixture.VIP, Proto: fixture.ProtoTCP, SrcPort: 1, DstPort: 80,
		TCPFlags: fixture.FlagSYN, TCPOptions: []byte{1, 3, 3, 7, 2, 4, 0x05, 0xb4}} // NOP, wscale 7, MSS 1460
	frame := syn.Bytes()
	if decoded(t, frame).ClampMSS(1500) {
		t.Fatal("raised an MSS")
	}
	if !decoded(t, frame).ClampMSS(1360) {
		t.Fatal("MSS 1460 not clamped to 1360")
	}
	want := syn
	want.TCPOptions = []byte{1, 3, 3, 7, 2, 4, 0x05, 0x50}
	if !bytes.Equal(frame, want.Bytes()) {
		t.Fatalf("clamped\n%x\nwant\n%x", frame, want.Bytes())
	}
	ack := syn
	ack.TCPFlags = fixture.FlagACK
	if decoded(t, ack.Bytes()).ClampMSS(100) {
		t.Fatal("clamped a non-SYN")
	}
	if binary.BigEndian.Uint16(frame[14+20+16:]) == 0 {
		t.Fatal("checksum zero")
	}
}
