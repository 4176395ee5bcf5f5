package packet

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

func TestDecodeSegment(t *testing.T) {
	base := fixture.Frame{Src: fixture.Client, Dst: fixture.VIP, Proto: fixture.ProtoTCP, SrcPort: 1, DstPort: 80,
		Seq: 1000, Window: 512}
	withOpts := func(f fixture.Frame, opts []byte) []byte {
		b := f.Bytes()
		// Rebuild with options: splice them after the 20-byte TCP header
		// and fix offsets and lengths; checksums do not matter to Decode.
		out := append(append(append([]byte(nil), b[:54]...), opts...), b[54:]...)
		out[46] = byte((20+len(opts))/4) << 4
		binary.BigEndian.PutUint16(out[16:], uint16(len(out)-14))
		return out
	}
	syn := base
	syn.TCPFlags = fixture.FlagSYN
	data := base
	data.TCPFlags, data.Payload = fixture.FlagACK|fixture.FlagFIN, []byte("hello")
	for _, c := range []struct {
		name  string
		frame []byte
		want  Segment
	}{
		{"syn without options", syn.Bytes(), Segment{Flags: FlagSYN, WScale: NoWScale, Win: 512, Seq: 1000, Len: 1}},
		{"syn with mss, nop, wscale 7", withOpts(syn, []byte{2, 4, 5, 0xb4, 1, 3, 3, 7}), Segment{Flags: FlagSYN, WScale: 7, Win: 512, Seq: 1000, Len: 1}},
		{"wscale above 14 is 14", withOpts(syn, []byte{3, 3, 20, 0}), Segment{Flags: FlagSYN, WScale: 14, Win: 512, Seq: 1000, Len: 1}},
		{"option length running past the header", withOpts(syn, []byte{1, 1, 3, 9}), Segment{Flags: FlagSYN, WScale: NoWScale, Win: 512, Seq: 1000, Len: 1}},
		{"data with fin", data.Bytes(), Segment{Flags: FlagACK | FlagFIN, WScale: NoWScale, Win: 512, Seq: 1000, Len: 6}},
	} {
		var p Packet
		if r := Decode(c.frame, &p); r != OK {
			t.Fatalf("%s: %v", c.name, r)
		}
		if p.Seg != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, p.Seg, c.want)
		}
	}
	bad := syn.Bytes()
	bad[46] = 4 << 4 // data offset 16 bytes
	var p Packet
	if r := Decode(bad, &p); r != ErrBadHeader {
		t.Errorf("data offset 4: %v", r)
	}
	bad[46] = 15 << 4 // 60 bytes of header in a 20-byte segment
	if r := Decode(bad, &p); r != ErrTruncated {
		t.Errorf("data offset past the segment: %v", r)
	}
}

// TestDecTTL: the LB is a hop; the decremented frame equals one built
// with TTL-1 from scratch.
func TestDecTTL(t *testing.T) {
	for _, ttl := range []uint8{64, 2, 255} {
		f := fixture.Frame{Src: fixture.Client, Dst: fixture.VIP, Proto: fixture.ProtoUDP, SrcPort: 1, DstPort: 9090, TTL: ttl, Payload: []byte("x")}
		frame := f.Bytes()
		var p Packet
		Decode(frame, &p)
		if p.TTL != ttl {
			t.Fatalf("decoded TTL %d, want %d", p.TTL, ttl)
		}
		p.DecTTL()
		want := f
		want.TTL = ttl - 1
		if !bytes.Equal(frame, want.Bytes()) || p.TTL != ttl-1 {
			t.Fatalf("TTL %d: decremented\n%x\nwant\n%x", ttl, frame, want.Bytes())
		}
	}
}
