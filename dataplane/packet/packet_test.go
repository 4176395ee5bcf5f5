package packet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

func TestDecodeFixtures(t *testing.T) {
	for _, c := range fixture.Cases() {
		var p Packet
		r := Decode(c.Frame, &p)
		if (r == OK) != c.Decodes {
			t.Errorf("%s: Decode = %v, want decodes=%v", c.Name, r, c.Decodes)
		}
	}
}

func TestDecodeFields(t *testing.T) {
	f := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoTCP, SrcPort: 40000, DstPort: 80, TCPFlags: fixture.FlagSYN,
		IPOptions: []byte{1, 1, 1, 0}}
	var p Packet
	if r := Decode(f.Bytes(), &p); r != OK {
		t.Fatalf("Decode = %v", r)
	}
	want := Tuple{Src: AddrFrom(fixture.Client), Dst: AddrFrom(fixture.VIP), SrcPort: 40000, DstPort: 80, Proto: ProtoTCP}
	if p.Tuple() != want || p.L4 != 14+24 || p.Seg.Flags != FlagSYN {
		t.Fatalf("decoded %+v (L4 %d flags %#x), want %+v", p.Tuple(), p.L4, p.Seg.Flags, want)
	}
	if p.Tuple().Reverse().Reverse() != want {
		t.Fatal("Reverse is not an involution")
	}
}

func TestDecodeResults(t *testing.T) {
	syn := fixture.Frame{Src: fixture.Client, Dst: fixture.VIP, Proto: fixture.ProtoTCP, SrcPort: 1, DstPort: 80}.Bytes()
	ipv6 := append([]byte(nil), syn...)
	binary.BigEndian.PutUint16(ipv6[12:], 0x86dd)
	shortTotal := append([]byte(nil), syn...)
	binary.BigEndian.PutUint16(shortTotal[16:], 24) // IP total < IHL + TCP header
	longTotal := append([]byte(nil), syn...)
	binary.BigEndian.PutUint16(longTotal[16:], 1500) // claims more than the frame has
	padded := append(append([]byte(nil), syn...), make([]byte, 10)...)
	for _, c := range []struct {
		name  string
		frame []byte
		want  Result
	}{
		{"empty", nil, ErrTruncated},
		{"ethernet only", syn[:14], ErrTruncated},
		{"ipv6", ipv6, ErrNotIP},
		{"tcp header cut by ip length", shortTotal, ErrTruncated},
		{"ip length beyond frame", longTotal, ErrTruncated},
		{"ethernet padding", padded, OK},
	} {
		var p Packet
		if got := Decode(c.frame, &p); got != c.want {
			t.Errorf("%s: got %v want %v", c.name, got, c.want)
		}
	}
}

func TestRewriteChecksums(t *testing.T) {
	newAddr := AddrFrom(netip.MustParseAddr("192.168.77.9"))
	for _, c := range fixture.Cases() {
		if !c.Decodes || isICMP(c.Frame) {
			continue
		}
		for _, dir := range []string{"dst", "src"} {
			frame := append([]byte(nil), c.Frame...)
			var p Packet
			if r := Decode(frame, &p); r != OK {
				t.Fatalf("%s: %v", c.Name, r)
			}
			newAddr := newAddr
			if p.V6 {
				newAddr = v6("2001:db8:77::9")
			}
			if dir == "dst" {
				p.SetDst(newAddr, 3306)
			} else {
				p.SetSrc(newAddr, 3307)
			}
			p.SetMACs(MAC(fixture.LBDownMAC), MAC(fixture.BackendMAC1))
			if err := fixture.VerifyChecksums(frame); err != nil {
				t.Errorf("%s (%s rewrite): %v", c.Name, dir, err)
			}
			var q Packet
			if Decode(frame, &q) != OK {
				t.Fatalf("%s: rewritten frame does not decode", c.Name)
			}
			if dir == "dst" && (q.Dst != newAddr || q.DstPort != 3306) || dir == "src" && (q.Src != newAddr || q.SrcPort != 3307) {
				t.Errorf("%s: rewrite %s not visible: %v", c.Name, dir, q.Tuple())
			}
			if !bytes.Equal(frame[:6], fixture.BackendMAC1[:]) || !bytes.Equal(frame[6:12], fixture.LBDownMAC[:]) {
				t.Errorf("%s: MACs not rewritten", c.Name)
			}
			if isUDP0(c.Frame) && binary.BigEndian.Uint16(frame[p.L4+6:]) != 0 {
				t.Errorf("%s: zero UDP checksum must stay zero", c.Name)
			}
		}
	}
}

// TestRewriteMatchesRebuild checks the incrementally rewritten frame equals a
// frame built from scratch with the new addresses: checksums included.
func TestRewriteMatchesRebuild(t *testing.T) {
	f := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoTCP, SrcPort: 40002, DstPort: 3307, TCPFlags: fixture.FlagSYN, Payload: []byte("select 1")}
	frame := f.Bytes()
	var p Packet
	Decode(frame, &p)
	p.SetDst(AddrFrom(fixture.Backend2), 3306)
	p.SetMACs(MAC(fixture.LBDownMAC), MAC(fixture.BackendMAC2))
	want := f
	want.Dst, want.DstPort = fixture.Backend2, 3306
	want.SrcMAC, want.DstMAC = fixture.LBDownMAC, fixture.BackendMAC2
	if !bytes.Equal(frame, want.Bytes()) {
		t.Fatalf("rewritten\n%x\nwant\n%x", frame, want.Bytes())
	}
}

func isUDP0(frame []byte) bool {
	var p Packet
	return Decode(frame, &p) == OK && p.Proto == ProtoUDP && binary.BigEndian.Uint16(frame[p.L4+6:]) == 0
}

func TestDecodeRewriteAllocs(t *testing.T) {
	frame := fixture.Cases()[1].Frame
	var p Packet
	a := AddrFrom(fixture.Backend1)
	if n := testing.AllocsPerRun(1000, func() {
		Decode(frame, &p)
		p.SetDst(a, 80)
		p.SetMACs(MAC{}, MAC{})
		tup := p.Tuple()
		_ = tup.Hash(1)
	}); n != 0 {
		t.Fatalf("decode+rewrite allocates %v per packet", n)
	}
}

// TestHashSpread: flows differing only in the client port must spread
// evenly over the low bits, which conntrack uses as an index.
func TestHashSpread(t *testing.T) {
	const buckets = 64
	var n [buckets]int
	base := Tuple{Src: v4(10, 0, 1, 2), Dst: v4(10, 0, 100, 1), DstPort: 80, Proto: ProtoTCP}
	for p := 0; p < 64000; p++ {
		base.SrcPort = uint16(p)
		n[base.Hash(7)%buckets]++
	}
	for i, c := range n {
		if c < 850 || c > 1150 {
			t.Fatalf("bucket %d has %d of 64000 (want ~1000)", i, c)
		}
	}
	if base.Hash(1) == base.Hash(2) {
		t.Fatal("seed does not change the hash")
	}
}

func isICMP(frame []byte) bool {
	var p Packet
	return Decode(frame, &p) == OK && p.Proto.IsICMP()
}

// Same agrees with == on tuples that differ in any one field, or none.
func TestTupleSame(t *testing.T) {
	base := Tuple{Src: AddrFrom(fixture.Client6), Dst: AddrFrom(fixture.VIP6), SrcPort: 40000, DstPort: 80, Proto: ProtoTCP}
	cases := map[string]func(*Tuple){
		"equal":   func(*Tuple) {},
		"src":     func(u *Tuple) { u.Src[0] ^= 1 },
		"src low": func(u *Tuple) { u.Src[15] ^= 1 },
		"dst":     func(u *Tuple) { u.Dst[3] ^= 0x80 },
		"dst low": func(u *Tuple) { u.Dst[15] ^= 1 },
		"srcport": func(u *Tuple) { u.SrcPort++ },
		"dstport": func(u *Tuple) { u.DstPort ^= 0x100 },
		"proto":   func(u *Tuple) { u.Proto = ProtoUDP },
		"family":  func(u *Tuple) { u.Src, u.Dst = AddrFrom(fixture.Client), AddrFrom(fixture.VIP) },
	}
	for name, change := range cases {
		u := base
		change(&u)
		if got, want := base.Same(&u), base == u; got != want || u.Same(&base) != want {
			t.Errorf("%s: Same = %v, == says %v", name, got, want)
		}
	}
}
