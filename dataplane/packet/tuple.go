package packet

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// Tuple is a packed, comparable 5-tuple usable as a map key.
type Tuple struct {
	Src, Dst         Addr
	SrcPort, DstPort uint16
	Proto            ipproto.Proto
}

// Reverse returns the tuple of the other direction.
func (t Tuple) Reverse() Tuple {
	return Tuple{Src: t.Dst, Dst: t.Src, SrcPort: t.DstPort, DstPort: t.SrcPort, Proto: t.Proto}
}

// Hash is a fast, seeded, allocation-free hash of t: the tuple packed into
// two words, combined with a multiply and spread by the splitmix64
// finalizer, so the low bits are usable (conntrack masks them; Maglev takes
// the hash modulo a prime). Conntrack seeds it at random.
func (t Tuple) Hash(seed uint64) uint64 {
	a := uint64(binary.LittleEndian.Uint32(t.Src[:]))<<32 | uint64(binary.LittleEndian.Uint32(t.Dst[:]))
	b := uint64(t.SrcPort)<<32 | uint64(t.DstPort)<<16 | uint64(t.Proto)
	return mix(a ^ seed ^ b*0x9e3779b97f4a7c15)
}

func mix(h uint64) uint64 {
	h += 0x9e3779b97f4a7c15
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	return h ^ h>>31
}

func (t Tuple) String() string {
	return fmt.Sprintf("%s %s:%d -> %s:%d", t.Proto, netip.AddrFrom4(t.Src), t.SrcPort, netip.AddrFrom4(t.Dst), t.DstPort)
}

// AddrFrom converts a netip.Addr (IPv4) to Addr.
func AddrFrom(a netip.Addr) Addr { return Addr(a.As4()) }

// PeekTuple reads a frame's TCP or UDP tuple without checking the rest of
// it, to prefetch its flow before Decode looks at it properly.
func PeekTuple(frame []byte) (Tuple, bool) {
	if len(frame) < ethLen+ipv4Min || binary.BigEndian.Uint16(frame[12:]) != 0x0800 || frame[l3]>>4 != 4 ||
		binary.BigEndian.Uint16(frame[ipFrag:])&0x3fff != 0 {
		return Tuple{}, false
	}
	proto := ipproto.Proto(frame[ipProto])
	l4 := l3 + int(frame[l3]&0x0f)*4
	if proto != ProtoTCP && proto != ProtoUDP || len(frame) < l4+4 {
		return Tuple{}, false
	}
	return Tuple{Src: Addr(frame[ipSrc : ipSrc+4]), Dst: Addr(frame[ipDst : ipDst+4]),
		SrcPort: binary.BigEndian.Uint16(frame[l4:]), DstPort: binary.BigEndian.Uint16(frame[l4+2:]), Proto: proto}, true
}
