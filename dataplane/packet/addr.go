package packet

import (
	"encoding/binary"
	"net/netip"
)

// Addr is an IP address in network order, 16 bytes for both families: an
// IPv4 address is stored IPv4-mapped (::ffff:a.b.c.d), as netip.Addr.As16
// gives it, so one tuple, one flow table and one set of maps serve both.
type Addr [16]byte

// v4Prefix is the first 12 bytes of an IPv4-mapped address.
var v4Prefix = [12]byte{10: 0xff, 11: 0xff}

// AddrFrom converts a netip.Addr of either family.
func AddrFrom(a netip.Addr) Addr { return Addr(a.As16()) }

// Addr4 makes the Addr of 4 IPv4 bytes in network order. Byte by byte:
// the compiler turns it into two stores, where copy calls memmove.
func Addr4(b []byte) (a Addr) {
	_ = b[3]
	a[10], a[11] = 0xff, 0xff
	a[12], a[13], a[14], a[15] = b[0], b[1], b[2], b[3]
	return a
}

// Is4 reports whether a is an IPv4(-mapped) address.
func (a Addr) Is4() bool { return [12]byte(a[:12]) == v4Prefix }

// V4 is the IPv4 part of an IPv4-mapped address.
func (a Addr) V4() [4]byte { return [4]byte(a[12:]) }

// IP is a as a netip.Addr, IPv4 unmapped.
func (a Addr) IP() netip.Addr { return netip.AddrFrom16(a).Unmap() }

func (a Addr) String() string { return a.IP().String() }

// hi and lo are the address's 64-bit halves, for hashing.
func (a *Addr) hi() uint64 { return binary.LittleEndian.Uint64(a[:8]) }
func (a *Addr) lo() uint64 { return binary.LittleEndian.Uint64(a[8:]) }
