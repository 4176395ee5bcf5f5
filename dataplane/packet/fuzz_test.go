package packet

import (
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
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
		p.SetDst(Addr{10, 1, 2, 3}, 3306)
		p.SetSrc(Addr{192, 0, 2, 1}, 3307)
		p.SetMACs(MAC{1}, MAC{2})
		if len(frame) != n {
			t.Fatal("frame length changed")
		}
		if valid {
			if err := fixture.VerifyChecksums(frame); err != nil {
				t.Fatalf("valid frame became invalid: %v", err)
			}
		}
	})
}
