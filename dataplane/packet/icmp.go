package packet

import (
	"encoding/binary"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/checksum"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// ICMP types the load balancer handles.
const (
	ICMPEchoReply    = 0
	ICMPUnreachable  = 3
	ICMPEchoRequest  = 8
	ICMPTimeExceeded = 11
	ICMPParamProblem = 12

	CodeFragNeeded      = 4 // with ICMPUnreachable: the next-hop MTU follows
	CodePortUnreachable = 3
)

// ICMP is a decoded ICMP header and, for errors, the packet it quotes: the
// flow an error belongs to is the quoted packet's.
type ICMP struct {
	Type, Code uint8
	Error      bool  // unreachable, time exceeded, parameter problem
	Inner      Tuple // the quoted packet's 5-tuple (TCP or UDP)
	InnerL3    int   // offset of the quoted IPv4 header in Frame
}

const (
	icmpLen     = 8
	maxQuote    = 576 - ipv4Min - icmpLen // RFC 1812: an error fits in 576 bytes
	frameOffL4  = ethLen + ipv4Min        // ICMP header of a message we build
	frameOffRaw = frameOffL4 + icmpLen    // its quoted packet
)

// decodeICMP reads an echo or an error quoting a TCP/UDP packet; other
// types, and errors quoting anything else, are ErrProto: the worker has no
// use for them.
func (p *Packet) decodeICMP(l4len int) Result {
	if l4len < icmpLen {
		return ErrTruncated
	}
	f := p.Frame
	c := &p.ICMP
	c.Type, c.Code = f[p.L4], f[p.L4+1]
	c.Error = c.Type == ICMPUnreachable || c.Type == ICMPTimeExceeded || c.Type == ICMPParamProblem
	switch {
	case c.Type == ICMPEchoRequest || c.Type == ICMPEchoReply:
		return OK
	case !c.Error:
		return ErrProto
	}
	in := p.L4 + icmpLen
	end := l3 + int(binary.BigEndian.Uint16(f[ipTotal:]))
	if end-in < ipv4Min {
		return ErrTruncated
	}
	ihl := int(f[in]&0x0f) * 4
	if f[in]>>4 != 4 || ihl < ipv4Min {
		return ErrBadHeader
	}
	if end-in < ihl+4 { // the ports
		return ErrTruncated
	}
	proto := ipproto.Proto(f[in+9])
	if !proto.IsL4() {
		return ErrProto
	}
	c.InnerL3 = in
	c.Inner = Tuple{Src: Addr(f[in+12 : in+16]), Dst: Addr(f[in+16 : in+20]), Proto: proto,
		SrcPort: binary.BigEndian.Uint16(f[in+ihl:]), DstPort: binary.BigEndian.Uint16(f[in+ihl+2:])}
	return OK
}

// SetInnerSrc and SetInnerDst rewrite the quoted packet's addresses and
// ports (its own header checksum, and its TCP/UDP checksum where the quote
// holds it); FixICMP must follow.
func (p *Packet) SetInnerSrc(a Addr, port uint16) {
	p.rewriteInner(12, 0, &p.ICMP.Inner.Src, &p.ICMP.Inner.SrcPort, a, port)
}

// SetInnerDst: see SetInnerSrc.
func (p *Packet) SetInnerDst(a Addr, port uint16) {
	p.rewriteInner(16, 2, &p.ICMP.Inner.Dst, &p.ICMP.Inner.DstPort, a, port)
}

func (p *Packet) rewriteInner(addrAt, portAt int, addr *Addr, port *uint16, a Addr, newPort uint16) {
	in := p.ICMP.InnerL3
	l4 := in + int(p.Frame[in]&0x0f)*4
	csum := l4 + 16
	if p.ICMP.Inner.Proto == ProtoUDP {
		csum = l4 + 6
	}
	end := l3 + int(binary.BigEndian.Uint16(p.Frame[ipTotal:]))
	if csum+2 > end {
		csum = -1 // not quoted
	}
	p.rewriteAt(in+10, in+addrAt, l4+portAt, csum, p.ICMP.Inner.Proto, addr, port, a, newPort)
}

// SetSrcAddr and SetDstAddr rewrite the outer addresses of an ICMP
// message (no ports; the ICMP checksum has no pseudo-header).
func (p *Packet) SetSrcAddr(a Addr) { p.setAddr(ipSrc, &p.Src, a) }

// SetDstAddr: see SetSrcAddr.
func (p *Packet) SetDstAddr(a Addr) { p.setAddr(ipDst, &p.Dst, a) }

func (p *Packet) setAddr(off int, addr *Addr, a Addr) {
	f := p.Frame
	binary.BigEndian.PutUint16(f[ipCsum:], checksum.Update32(binary.BigEndian.Uint16(f[ipCsum:]), *addr, a))
	copy(f[off:off+4], a[:])
	*addr = a
}

// FixICMP recomputes the ICMP checksum: an error's checksum covers the quoted
// packet, cheaper to sum again (at most 548 bytes, rare) than to follow.
func (p *Packet) FixICMP() {
	f := p.Frame
	end := l3 + int(binary.BigEndian.Uint16(f[ipTotal:]))
	f[p.L4+2], f[p.L4+3] = 0, 0
	binary.BigEndian.PutUint16(f[p.L4+2:], checksum.Compute(f[p.L4:end]))
}

// EchoReply turns an echo request into its reply in place: addresses
// swapped, type 0, a fresh TTL, from srcMAC back to the sender's MAC.
func (p *Packet) EchoReply(srcMAC MAC) {
	f := p.Frame
	copy(f[0:6], f[6:12])
	copy(f[6:12], srcMAC[:])
	p.Src, p.Dst = p.Dst, p.Src
	copy(f[ipSrc:ipSrc+4], p.Src[:])
	copy(f[ipDst:ipDst+4], p.Dst[:])
	f[ipTTL] = 64
	p.TTL = 64
	fixIPHeader(f[l3 : l3+int(f[l3]&0x0f)*4])
	f[p.L4] = ICMPEchoReply
	p.ICMP.Type = ICMPEchoReply
	p.FixICMP()
}

// ICMPError replaces the frame with an ICMP error about it, sent from src
// to the frame's source, via srcMAC to the MAC it came from: the quoted
// packet is the start of the original IP datagram (RFC 1812). rest is the
// header's second word (the next-hop MTU of a fragmentation-needed). The
// frame's slice must have room up to 590 bytes (a UMEM frame has). It
// returns the new frame length.
func (p *Packet) ICMPError(typ, code uint8, rest uint32, src Addr, srcMAC MAC) int {
	f := p.Frame[:cap(p.Frame)]
	q := min(p.Len(), maxQuote)
	copy(f[frameOffRaw:frameOffRaw+q], f[l3:l3+q]) // overlapping: copy moves
	copy(f[0:6], f[6:12])
	copy(f[6:12], srcMAC[:])
	ip := f[l3 : l3+ipv4Min]
	ip[0], ip[1] = 0x45, 0xc0 // internetwork control, as Linux sends errors
	binary.BigEndian.PutUint16(ip[2:], uint16(ipv4Min+icmpLen+q))
	binary.BigEndian.PutUint32(ip[4:], 0)
	ip[8], ip[9] = 64, byte(ipproto.ICMP)
	copy(ip[16:20], p.Src[:])
	copy(ip[12:16], src[:])
	fixIPHeader(ip)
	m := f[frameOffL4:]
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:], rest)
	n := frameOffRaw + q
	p.Frame = f[:n]
	p.Dst, p.Src, p.TTL, p.L4, p.Proto = p.Src, src, 64, frameOffL4, ipproto.ICMP
	p.ICMP = ICMP{Type: typ, Code: code, Error: true}
	p.FixICMP()
	return n
}

// fixIPHeader recomputes an IPv4 header checksum from scratch.
func fixIPHeader(ip []byte) {
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], checksum.Compute(ip))
}
