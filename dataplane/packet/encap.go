package packet

import (
	"encoding/binary"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/checksum"
)

// IPIPOverhead is what IPv4-in-IPv4 encapsulation adds to a datagram.
const IPIPOverhead = ipv4Min

const protoIPIP = 4

// DF reports whether the datagram may not be fragmented.
// IPv6 routers never fragment: every IPv6 packet is DF.
func (p *Packet) DF() bool { return p.V6 || binary.BigEndian.Uint16(p.Frame[ipFrag:])&0x4000 != 0 }

// EncapIPIP prepends an outer IPv4 header (protocol 4) from src to dst,
// using the headroom in front of the frame: buf is the frame's whole UMEM
// chunk and off where the frame starts in it (off >= IPIPOverhead). The
// outer header copies the inner TOS and DF bit. It returns the new frame,
// which starts IPIPOverhead bytes earlier. IPv4 only: dsr-ipip services
// are IPv4.
func (p *Packet) EncapIPIP(buf []byte, off int, src, dst Addr, srcMAC, dstMAC MAC) []byte {
	inner := p.Len()
	f := buf[off-IPIPOverhead : off+len(p.Frame)]
	copy(f[0:6], dstMAC[:])
	copy(f[6:12], srcMAC[:])
	f[12], f[13] = 0x08, 0x00
	ip := f[l3 : l3+ipv4Min]
	tos := buf[off+l3+1]
	df := binary.BigEndian.Uint16(buf[off+ipFrag:]) & 0x4000
	ip[0], ip[1] = 0x45, tos
	binary.BigEndian.PutUint16(ip[2:], uint16(ipv4Min+inner))
	binary.BigEndian.PutUint16(ip[4:], 0)
	binary.BigEndian.PutUint16(ip[6:], df)
	ip[8], ip[9] = 64, protoIPIP
	copy(ip[12:16], src[12:])
	copy(ip[16:20], dst[12:])
	fixIPHeader(ip)
	p.Frame = f
	return f
}

// ClampMSS lowers the MSS option of a SYN to max, with the checksum; it
// reports whether it changed anything.
func (p *Packet) ClampMSS(max uint16) bool {
	if p.Proto != ProtoTCP || p.Seg.Flags&FlagSYN == 0 {
		return false
	}
	f := p.Frame
	t := f[p.L4:]
	doff := int(t[tcpOff]>>4) * 4
	opts := t[tcpMinLen:doff]
	i := tcpOption(opts, 2, 4)
	if i < 0 {
		return false
	}
	old := binary.BigEndian.Uint16(opts[i+2:])
	if old <= max {
		return false
	}
	binary.BigEndian.PutUint16(opts[i+2:], max)
	c := binary.BigEndian.Uint16(t[16:])
	binary.BigEndian.PutUint16(t[16:], checksum.Update16(c, old, max))
	return true
}
