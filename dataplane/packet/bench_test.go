package packet

import (
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

func BenchmarkDecodeRewrite(b *testing.B) {
	frame := fixture.Cases()[0].Frame
	var p Packet
	a := v4(10, 0, 2, 11)
	for b.Loop() {
		Decode(frame, &p)
		p.SetDst(a, 80)
		p.SetMACs(MAC{}, MAC{})
	}
}
