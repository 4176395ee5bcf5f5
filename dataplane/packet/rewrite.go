package packet

import (
	"encoding/binary"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/checksum"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// SetMACs writes the Ethernet source and destination.
func (p *Packet) SetMACs(src, dst MAC) {
	copy(p.Frame[0:6], dst[:])
	copy(p.Frame[6:12], src[:])
}

// DecTTL decrements the TTL (IPv6: the hop limit), as every hop does. The
// IPv4 header checksum follows: TTL is the high byte of the word it shares
// with the protocol. IPv6 has no header checksum.
func (p *Packet) DecTTL() {
	f := p.Frame
	if p.V6 {
		f[ip6Hop]--
		p.TTL = f[ip6Hop]
		return
	}
	old := uint16(f[ipTTL])<<8 | uint16(f[ipProto])
	f[ipTTL]--
	p.TTL = f[ipTTL]
	ipc := binary.BigEndian.Uint16(f[ipCsum:])
	binary.BigEndian.PutUint16(f[ipCsum:], checksum.Update16(ipc, old, old-0x100))
}

// SetDst rewrites the destination address and port (DNAT), updating the IPv4
// header checksum and the TCP/UDP checksum (whose pseudo-header covers the
// address) incrementally.
func (p *Packet) SetDst(a Addr, port uint16) {
	p.rewrite(p.dstOff(), p.L4+2, &p.Dst, &p.DstPort, a, port)
}

// SetSrc rewrites the source address and port (reverse SNAT of replies).
func (p *Packet) SetSrc(a Addr, port uint16) {
	p.rewrite(p.srcOff(), p.L4, &p.Src, &p.SrcPort, a, port)
}

// srcOff and dstOff are where the packet's addresses are.
func (p *Packet) srcOff() int {
	if p.V6 {
		return ip6Src
	}
	return ipSrc
}

func (p *Packet) dstOff() int {
	if p.V6 {
		return ip6Dst
	}
	return ipDst
}

// ipCsumOff is the IPv4 header checksum's offset, -1 for IPv6.
func (p *Packet) ipCsumOff() int {
	if p.V6 {
		return -1
	}
	return ipCsum
}

func (p *Packet) rewrite(addrOff, portOff int, addr *Addr, port *uint16, a Addr, newPort uint16) {
	csum := p.L4 + 16
	if p.Proto == ProtoUDP {
		csum = p.L4 + 6
	}
	p.rewriteAt(p.ipCsumOff(), addrOff, portOff, csum, p.Proto, addr, port, &a, newPort)
}

// rewriteAt changes an address and a port of an IP header and its TCP or
// UDP header, wherever they are (the packet, or one an ICMP error quotes):
// the IPv4 header checksum (ipCsumOff < 0: IPv6, none), and the L4
// checksum (csumOff < 0: not present), whose pseudo-header covers the
// address, follow incrementally.
// Addresses go by pointer: an array argument is passed through memory.
func (p *Packet) rewriteAt(ipCsumOff, addrOff, portOff, csumOff int, proto ipproto.Proto, addr *Addr, port *uint16, a *Addr, newPort uint16) {
	f := p.Frame
	old, oldPort := *addr, *port
	p.putAddr(ipCsumOff, addrOff, &old, a)
	binary.BigEndian.PutUint16(f[portOff:], newPort)
	*addr, *port = *a, newPort
	if csumOff < 0 {
		return
	}
	c := binary.BigEndian.Uint16(f[csumOff:])
	if proto == ProtoUDP && c == 0 && ipCsumOff >= 0 {
		return // an IPv4 sender did not compute a UDP checksum; 0 stays valid
	}
	c = checksum.Update16(updateAddr(c, &old, a), oldPort, newPort)
	if proto == ProtoUDP && c == 0 {
		c = 0xffff // 0 would mean "no checksum" (RFC 768)
	}
	binary.BigEndian.PutUint16(f[csumOff:], c)
}

// putAddr stores a at off in place of old: 4 bytes and the IPv4 header
// checksum (ipCsumOff >= 0), or 16 bytes of an IPv6 header.
func (p *Packet) putAddr(ipCsumOff, off int, old, a *Addr) {
	f := p.Frame
	if ipCsumOff < 0 {
		copy(f[off:off+16], a[:])
		return
	}
	o, n := binary.BigEndian.Uint32(old[12:]), binary.BigEndian.Uint32(a[12:])
	ipc := binary.BigEndian.Uint16(f[ipCsumOff:])
	binary.BigEndian.PutUint16(f[ipCsumOff:], checksum.Update32(ipc, o, n))
	binary.BigEndian.PutUint32(f[off:], n)
}

// updateAddr follows a checksum whose pseudo-header covers an address that
// changed from old to a. An IPv4-mapped address's fixed prefix is in
// neither, so both families take the same update.
func updateAddr(c uint16, old, a *Addr) uint16 {
	if old.Is4() && a.Is4() {
		return checksum.Update32(c, binary.BigEndian.Uint32(old[12:]), binary.BigEndian.Uint32(a[12:]))
	}
	return checksum.Update128(c, *old, *a)
}
