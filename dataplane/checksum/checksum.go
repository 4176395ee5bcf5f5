// Package checksum updates Internet checksums incrementally (RFC 1624) when
// header fields are rewritten, without touching the payload.
package checksum

// Update16 returns checksum hc after one 16-bit word of the covered data
// changed from old to new: HC' = ~(~HC + ~m + m') (RFC 1624, eqn. 3).
func Update16(hc, old, new uint16) uint16 {
	s := uint32(^hc) + uint32(^old) + uint32(new)
	s = s>>16 + s&0xffff
	s += s >> 16
	return ^uint16(s)
}

// Update32 is Update16 for a 32-bit field such as an IPv4 address, given as
// the four bytes in network order.
func Update32(hc uint16, old, new [4]byte) uint16 {
	s := uint32(^hc) +
		uint32(^(uint16(old[0])<<8 | uint16(old[1]))) + uint32(^(uint16(old[2])<<8 | uint16(old[3]))) +
		uint32(uint16(new[0])<<8|uint16(new[1])) + uint32(uint16(new[2])<<8|uint16(new[3]))
	s = s>>16 + s&0xffff
	s += s >> 16
	return ^uint16(s)
}

// Compute returns the Internet checksum of b (RFC 1071), ready to store:
// for headers built from scratch and for ICMP messages, whose checksum
// covers a payload that is cheaper to sum again than to follow.
func Compute(b []byte) uint16 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
