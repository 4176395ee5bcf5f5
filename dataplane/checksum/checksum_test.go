package checksum

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// full is an independent RFC 1071 checksum over words.
func full(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func TestUpdateMatchesRecompute(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 40)
	for i := 0; i < 20000; i++ {
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		if i%7 == 0 { // the RFC 1624 corner: data summing to 0xffff / 0
			for j := range buf {
				buf[j] = 0xff
			}
		}
		hc := full(buf)
		off := 2 * r.IntN(len(buf)/2-1)
		old16 := binary.BigEndian.Uint16(buf[off:])
		old32 := [4]byte(buf[off : off+4])
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], r.Uint32())

		binary.BigEndian.PutUint16(buf[off:], binary.BigEndian.Uint16(n[:]))
		if got, want := Update16(hc, old16, binary.BigEndian.Uint16(n[:])), full(buf); !equiv(got, want) {
			t.Fatalf("Update16: got %#04x want %#04x", got, want)
		}
		copy(buf[off:], old32[:])
		copy(buf[off:], n[:])
		if got, want := Update32(hc, binary.BigEndian.Uint32(old32[:]), binary.BigEndian.Uint32(n[:])), full(buf); !equiv(got, want) {
			t.Fatalf("Update32: got %#04x want %#04x", got, want)
		}
	}
}

// equiv treats 0x0000 and 0xffff as the same ones' complement value; a
// verifier summing the data with either gets 0xffff.
func equiv(a, b uint16) bool {
	return a == b || (a == 0 || a == 0xffff) && (b == 0 || b == 0xffff)
}

func TestUpdateNoChange(t *testing.T) {
	if got := Update16(0x1234, 0xabcd, 0xabcd); got != 0x1234 {
		t.Fatalf("unchanged word changed checksum to %#04x", got)
	}
}

func TestCompute(t *testing.T) {
	// RFC 1071's example words sum to 0xddf2 (folded); the checksum is its complement.
	if got := Compute([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}); got != ^uint16(0xddf2) {
		t.Fatalf("Compute = %#04x", got)
	}
	if got := Compute([]byte{0xff}); got != ^uint16(0xff00) {
		t.Fatalf("odd length: %#04x", got)
	}
}

// One Adjust with the folded Changes of several fields gives what Update32
// and Update16 give field by field (an address and a port, as a NAT
// rewrite), bit for bit: the express path relies on it.
func TestAdjustIsUpdates(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200000; i++ {
		hc := uint16(r.Uint32())
		if i%5 == 0 {
			hc = 0xffff // ~hc is 0: the corner where a sum could be 0
		}
		var old, new [6]byte
		for j := range old {
			old[j], new[j] = byte(r.Uint32()), byte(r.Uint32())
		}
		if i%3 == 0 {
			copy(new[4:], old[4:]) // a field left as it was
		}
		if i%7 == 0 { // words whose ~old + new is 0
			old, new = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, [6]byte{}
		}
		want := Update16(Update32(hc, binary.BigEndian.Uint32(old[:]), binary.BigEndian.Uint32(new[:])),
			binary.BigEndian.Uint16(old[4:]), binary.BigEndian.Uint16(new[4:]))
		if got := Adjust(hc, Fold(Changes(old[:], new[:]))); got != want {
			t.Fatalf("hc %#04x %x -> %x: Adjust %#04x, Update32+Update16 %#04x", hc, old, new, got, want)
		}
	}
}
