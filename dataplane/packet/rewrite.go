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

// DecTTL decrements the TTL, as every hop does, updating the header
// checksum: TTL is the high byte of the word it shares with the protocol.
func (p *Packet) DecTTL() {
	f := p.Frame
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
	p.rewrite(ipDst, p.L4+2, &p.Dst, &p.DstPort, a, port)
}

// SetSrc rewrites the source address and port (reverse SNAT of replies).
func (p *Packet) SetSrc(a Addr, port uint16) {
	p.rewrite(ipSrc, p.L4, &p.Src, &p.SrcPort, a, port)
}

func (p *Packet) rewrite(addrOff, portOff int, addr *Addr, port *uint16, a Addr, newPort uint16) {
	csum := p.L4 + 16
	if p.Proto == ProtoUDP {
		csum = p.L4 + 6
	}
	p.rewriteAt(ipCsum, addrOff, portOff, csum, p.Proto, addr, port, a, newPort)
}

// rewriteAt changes an address and a port of an IPv4 header and its TCP or
// UDP header, wherever they are (the packet, or one an ICMP error quotes):
// the header checksum, and the L4 checksum (csumOff < 0: not present),
// whose pseudo-header covers the address, follow incrementally.
func (p *Packet) rewriteAt(ipCsumOff, addrOff, portOff, csumOff int, proto ipproto.Proto, addr *Addr, port *uint16, a Addr, newPort uint16) {
	f := p.Frame
	old, oldPort := *addr, *port
	ipc := binary.BigEndian.Uint16(f[ipCsumOff:])
	binary.BigEndian.PutUint16(f[ipCsumOff:], checksum.Update32(ipc, old, a))
	copy(f[addrOff:addrOff+4], a[:])
	binary.BigEndian.PutUint16(f[portOff:], newPort)
	*addr, *port = a, newPort
	if csumOff < 0 {
		return
	}
	c := binary.BigEndian.Uint16(f[csumOff:])
	if proto == ProtoUDP && c == 0 {
		return // sender did not compute a UDP checksum; 0 stays valid
	}
	c = checksum.Update16(checksum.Update32(c, old, a), oldPort, newPort)
	if proto == ProtoUDP && c == 0 {
		c = 0xffff // 0 would mean "no checksum" (RFC 768)
	}
	binary.BigEndian.PutUint16(f[csumOff:], c)
}
