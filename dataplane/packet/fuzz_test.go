package packet

import (
	"net/netip"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

// FuzzDecodeRewrite: no frame may panic or write out of bounds, a
// rewrite of a frame with valid checksums keeps them valid, and the tuple
// PeekTuple reads (for prefetching) is the one Decode finds.
func FuzzDecodeRewrite(f *testing.F) {
	for _, c := range fixture.Cases() {
		f.Add(c.Frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		valid := fixture.VerifyChecksums(frame) == nil
		var peek Tuple
		peeked := PeekTuple(frame, &peek)
		var p Packet
		if Decode(frame, &p) != OK {
			return
		}
		if peeked && !p.Proto.IsICMP() && peek != p.Tuple() {
			t.Fatalf("PeekTuple read %v, Decode %v", peek, p.Tuple())
		}
		n := len(frame)
		a, b, c := v4(10, 1, 2, 3), v4(192, 0, 2, 1), v4(10, 9, 9, 9)
		if p.V6 {
			a, b, c = v6("2001:db8:2::11"), v6("2001:db8:1::7"), v6("2001:db8:9::9")
		}
		inner6 := p.Proto.IsICMP() && p.ICMP.Error && !p.ICMP.Inner.Src.Is4()
		if inner6 != (p.Proto.IsICMP() && p.ICMP.Error && p.V6) {
			t.Fatal("an ICMP error quotes a packet of the other family")
		}
		switch {
		case p.Proto.IsICMP() && p.ICMP.Error:
			p.SetInnerSrc(a, 3306)
			p.SetInnerDst(b, 3307)
			p.SetSrcAddr(c)
			p.FixICMP()
		case p.Proto.IsICMP():
			p.EchoReply(MAC{3})
		default:
			p.SetDst(a, 3306)
			p.SetSrc(b, 3307)
			p.ClampMSS(536)
		}
		p.SetMACs(MAC{1}, MAC{2})
		if len(frame) != n {
			t.Fatal("frame length changed")
		}
		// An error about a frame that fits a UMEM frame (at most 1792 bytes
		// after the headroom) fits it too and is valid.
		buf := make([]byte, 2048)
		copy(buf, frame)
		var q Packet
		if n <= 1792 && Decode(buf[:n], &q) == OK {
			m := q.TooBig(1400, c, MAC{4})
			if err := fixture.VerifyChecksums(buf[:m]); err != nil {
				t.Fatalf("generated error invalid: %v", err)
			}
		}
		if valid {
			if err := fixture.VerifyChecksums(frame); err != nil {
				t.Fatalf("valid frame became invalid: %v", err)
			}
		}
	})
}

func v4(a, b, c, d byte) Addr { return Addr4([]byte{a, b, c, d}) }

func v6(s string) Addr { return AddrFrom(netip.MustParseAddr(s)) }
