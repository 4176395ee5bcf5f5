package packet

import (
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// FuzzDecodeRewrite: no frame may panic or write out of bounds, and a
// rewrite of a frame with valid checksums keeps them valid.
func FuzzDecodeRewrite(f *testing.F) {
	for _, c := range fixture.Cases() {
		f.Add(c.Frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		valid := fixture.VerifyChecksums(frame) == nil
		var p Packet
		if Decode(frame, &p) != OK {
			return
		}
		n := len(frame)
		switch {
		case p.Proto == ipproto.ICMP && p.ICMP.Error:
			p.SetInnerSrc(Addr{10, 1, 2, 3}, 3306)
			p.SetInnerDst(Addr{192, 0, 2, 1}, 3307)
			p.SetSrcAddr(Addr{10, 9, 9, 9})
			p.FixICMP()
		case p.Proto == ipproto.ICMP:
			p.EchoReply(MAC{3})
		default:
			p.SetDst(Addr{10, 1, 2, 3}, 3306)
			p.SetSrc(Addr{192, 0, 2, 1}, 3307)
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
			m := q.ICMPError(ICMPUnreachable, CodeFragNeeded, 1400, Addr{10, 0, 100, 1}, MAC{4})
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
