// Package checksum updates Internet checksums incrementally (RFC 1624) when
// header fields are rewritten, without touching the payload.
package checksum

// Update16 returns checksum hc after one 16-bit word of the covered data
// changed from old to new: HC' = ~(~HC + ~m + m') (RFC 1624, eqn. 3).
func Update16(hc, old, new uint16) uint16 {
	return ^Fold(uint32(^hc) + uint32(^old) + uint32(new))
}

// Update32 is Update16 for a 32-bit field such as an IPv4 address, given
// as its big-endian value (what binary.BigEndian.Uint32 reads).
func Update32(hc uint16, old, new uint32) uint16 {
	return ^Fold(uint32(^hc) + uint32(^uint16(old>>16)) + uint32(^uint16(old)) + new>>16 + new&0xffff)
}

// Compute returns the Internet checksum of b (RFC 1071), ready to store:
// for headers built from scratch and for ICMP messages, whose checksum
// covers a payload that is cheaper to sum again than to follow.
func Compute(b []byte) uint16 { return ComputeFrom(0, b) }

// ComputeFrom is Compute over a pseudo-header's partial sum s and b.
func ComputeFrom(s uint32, b []byte) uint16 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return ^Fold(s)
}

// Update128 is Update16 for a 128-bit field such as an IPv6 address.
func Update128(hc uint16, old, new [16]byte) uint16 {
	return ^Fold(uint32(^hc) + Changes(old[:], new[:]))
}

// Changes is the sum of ~old + new over the 16-bit words of a field that
// changed from old to new (as long as each other), not yet folded: the
// change a checksum takes, RFC 1624 eqn. 3, for Adjust.
func Changes(old, new []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(old); i += 2 {
		s += uint32(^(uint16(old[i])<<8 | uint16(old[i+1]))) + uint32(uint16(new[i])<<8|uint16(new[i+1]))
	}
	return s
}

// Adjust returns checksum hc after changes whose folded sum is d (Fold of
// Changes, of several fields at once): HC' = ~(~HC + d). For a field
// rewritten with the same values in every packet of a flow, d is the same
// for all of them, and one Adjust gives what the Update calls field by
// field would (TestAdjustIsUpdates).
func Adjust(hc, d uint16) uint16 { return ^Fold(uint32(^hc) + uint32(d)) }

// Fold adds the carries of a ones' complement sum back in, down to 16
// bits: two rounds do for any 32-bit sum.
func Fold(s uint32) uint16 {
	s = s>>16 + s&0xffff
	s += s >> 16
	return uint16(s)
}

// Pseudo6 is the partial sum of an IPv6 pseudo-header (RFC 8200 8.1), for
// ComputeFrom.
func Pseudo6(src, dst [16]byte, length uint32, next uint8) uint32 {
	var s uint32
	for i := 0; i < 16; i += 2 {
		s += uint32(src[i])<<8 | uint32(src[i+1])
		s += uint32(dst[i])<<8 | uint32(dst[i+1])
	}
	return s + length>>16 + length&0xffff + uint32(next)
}
