package packet

import (
	"fmt"
	"net/netip"
)

// Tuple is a packed, comparable 5-tuple usable as a map key.
type Tuple struct {
	Src, Dst         Addr
	SrcPort, DstPort uint16
	Proto            uint8
}

// Reverse returns the tuple of the other direction.
func (t Tuple) Reverse() Tuple {
	return Tuple{Src: t.Dst, Dst: t.Src, SrcPort: t.DstPort, DstPort: t.SrcPort, Proto: t.Proto}
}

// Hash is a fast, seeded, allocation-free hash of t (FNV-1a over the fields,
// then a murmur3 finalizer to spread the low bits).
func (t Tuple) Hash(seed uint64) uint64 {
	h := seed ^ 0xcbf29ce484222325
	for _, b := range t.Src {
		h = (h ^ uint64(b)) * 0x100000001b3
	}
	for _, b := range t.Dst {
		h = (h ^ uint64(b)) * 0x100000001b3
	}
	h = (h ^ uint64(t.SrcPort)) * 0x100000001b3
	h = (h ^ uint64(t.DstPort)) * 0x100000001b3
	h = (h ^ uint64(t.Proto)) * 0x100000001b3
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func (t Tuple) String() string {
	p := "tcp"
	if t.Proto == ProtoUDP {
		p = "udp"
	}
	return fmt.Sprintf("%s %s:%d -> %s:%d", p, netip.AddrFrom4(t.Src), t.SrcPort, netip.AddrFrom4(t.Dst), t.DstPort)
}

// AddrFrom converts a netip.Addr (IPv4) to Addr.
func AddrFrom(a netip.Addr) Addr { return Addr(a.As4()) }
