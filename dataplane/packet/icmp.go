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

	// ICMPv6 (RFC 4443).
	ICMP6Unreachable  = 1
	ICMP6TooBig       = 2 // the MTU follows
	ICMP6TimeExceeded = 3
	ICMP6ParamProblem = 4
	ICMP6EchoRequest  = 128
	ICMP6EchoReply    = 129
)

// ICMP is a decoded ICMP header and, for errors, the packet it quotes: the
// flow an error belongs to is the quoted packet's.
type ICMP struct {
	Type, Code uint8
	Error      bool  // unreachable, time exceeded, parameter problem
	Inner      Tuple // the quoted packet's 5-tuple (TCP or UDP)
	InnerL3    int   // offset of the quoted IP header in Frame
	InnerL4    int   // offset of the quoted TCP/UDP header in Frame
}

// IsEchoRequest is true for an ICMP (ICMPv6 for IPv6) echo request.
func (p *Packet) IsEchoRequest() bool {
	if p.V6 {
		return p.ICMP.Type == ICMP6EchoRequest
	}
	return p.ICMP.Type == ICMPEchoRequest
}

const (
	icmpLen     = 8
	maxQuote    = 576 - ipv4Min - icmpLen // RFC 1812: an error fits in 576 bytes
	frameOffL4  = ethLen + ipv4Min        // ICMP header of a message we build
	frameOffRaw = frameOffL4 + icmpLen    // its quoted packet
	// RFC 4443 2.4: an ICMPv6 error fits in the minimum IPv6 MTU.
	maxQuote6    = 1280 - ipv6Len - icmpLen
	frameOffL46  = ethLen + ipv6Len
	frameOffRaw6 = frameOffL46 + icmpLen
)

// decodeICMP reads an echo or an error quoting a TCP/UDP packet (ICMPv6
// for IPv6); other types, and errors quoting anything else, are ErrProto:
// the worker has no use for them (NDP is never steered to it).
func (p *Packet) decodeICMP(l4len int) Result {
	if l4len < icmpLen {
		return ErrTruncated
	}
	f := p.Frame
	c := &p.ICMP
	c.Type, c.Code = f[p.L4], f[p.L4+1]
	if p.V6 {
		c.Error = c.Type >= ICMP6Unreachable && c.Type <= ICMP6ParamProblem
		if c.Type == ICMP6EchoRequest || c.Type == ICMP6EchoReply {
			return OK
		}
	} else {
		c.Error = c.Type == ICMPUnreachable || c.Type == ICMPTimeExceeded || c.Type == ICMPParamProblem
		if c.Type == ICMPEchoRequest || c.Type == ICMPEchoReply {
			return OK
		}
	}
	if !c.Error {
		return ErrProto
	}
	in := p.L4 + icmpLen
	end := l3 + p.IPLen
	var r Result
	if p.V6 {
		r = c.quoted6(f[:end], in)
	} else {
		r = c.quoted4(f[:end], in)
	}
	if r != OK {
		return r
	}
	c.InnerL3 = in
	c.Inner.SrcPort = binary.BigEndian.Uint16(f[c.InnerL4:])
	c.Inner.DstPort = binary.BigEndian.Uint16(f[c.InnerL4+2:])
	return OK
}

// quoted4 reads the IPv4 header an ICMP error quotes at in; f ends with
// the datagram.
func (c *ICMP) quoted4(f []byte, in int) Result {
	if len(f)-in < ipv4Min {
		return ErrTruncated
	}
	ihl := int(f[in]&0x0f) * 4
	if f[in]>>4 != 4 || ihl < ipv4Min {
		return ErrBadHeader
	}
	if len(f)-in < ihl+4 { // the ports
		return ErrTruncated
	}
	proto := ipproto.Proto(f[in+9])
	if !proto.IsL4() {
		return ErrProto
	}
	c.InnerL4 = in + ihl
	c.Inner = Tuple{Src: Addr4(f[in+12:]), Dst: Addr4(f[in+16:]), Proto: proto}
	return OK
}

// quoted6 reads the IPv6 header an ICMPv6 error quotes at in, walking its
// extension headers as far as the quote goes.
func (c *ICMP) quoted6(f []byte, in int) Result {
	if len(f)-in < ipv6Len {
		return ErrTruncated
	}
	if f[in]>>4 != 6 {
		return ErrBadHeader
	}
	next, off, r := walkExt6(f[in:], f[in+6], ipv6Len)
	if r != OK {
		return r
	}
	proto := ipproto.Proto(next)
	if !proto.IsL4() {
		return ErrProto
	}
	if len(f)-in < off+4 {
		return ErrTruncated
	}
	c.InnerL4 = in + off
	c.Inner = Tuple{Src: Addr(f[in+8 : in+24]), Dst: Addr(f[in+24 : in+40]), Proto: proto}
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
	in, l4 := p.ICMP.InnerL3, p.ICMP.InnerL4
	csum := l4 + 16
	if p.ICMP.Inner.Proto == ProtoUDP {
		csum = l4 + 6
	}
	if csum+2 > l3+p.IPLen {
		csum = -1 // not quoted
	}
	ipc := in + 10
	if p.V6 {
		ipc = -1
		addrAt = 8 + (addrAt-12)*4 // source at 8, destination at 24
	}
	p.rewriteAt(ipc, in+addrAt, l4+portAt, csum, p.ICMP.Inner.Proto, addr, port, &a, newPort)
}

// SetSrcAddr and SetDstAddr rewrite the outer addresses of an ICMP
// message (no ports; FixICMP must follow, since an ICMPv6 checksum covers
// them).
func (p *Packet) SetSrcAddr(a Addr) { p.setAddr(p.srcOff(), &p.Src, a) }

// SetDstAddr: see SetSrcAddr.
func (p *Packet) SetDstAddr(a Addr) { p.setAddr(p.dstOff(), &p.Dst, a) }

func (p *Packet) setAddr(off int, addr *Addr, a Addr) {
	old := *addr
	p.putAddr(p.ipCsumOff(), off, &old, &a)
	*addr = a
}

// FixICMP recomputes the ICMP checksum: an error's checksum covers the quoted
// packet, cheaper to sum again (at most 548 bytes, 1232 for ICMPv6, rare)
// than to follow. ICMPv6's covers a pseudo-header too.
func (p *Packet) FixICMP() {
	f := p.Frame
	end := l3 + p.IPLen
	f[p.L4+2], f[p.L4+3] = 0, 0
	var c uint16
	if p.V6 {
		c = checksum.ComputeFrom(checksum.Pseudo6(p.Src, p.Dst, uint32(end-p.L4), uint8(ipproto.ICMPv6)), f[p.L4:end])
	} else {
		c = checksum.Compute(f[p.L4:end])
	}
	binary.BigEndian.PutUint16(f[p.L4+2:], c)
}

// EchoReply turns an echo request into its reply in place: addresses
// swapped, type echo reply, a fresh TTL, from srcMAC back to the sender's
// MAC.
func (p *Packet) EchoReply(srcMAC MAC) {
	f := p.Frame
	copy(f[0:6], f[6:12])
	copy(f[6:12], srcMAC[:])
	p.Src, p.Dst = p.Dst, p.Src
	p.TTL = 64
	p.ICMP.Type = ICMPEchoReply
	if p.V6 {
		copy(f[ip6Src:ip6Src+16], p.Src[:])
		copy(f[ip6Dst:ip6Dst+16], p.Dst[:])
		f[ip6Hop] = 64
		p.ICMP.Type = ICMP6EchoReply
	} else {
		copy(f[ipSrc:ipSrc+4], p.Src[12:])
		copy(f[ipDst:ipDst+4], p.Dst[12:])
		f[ipTTL] = 64
		fixIPHeader(f[l3 : l3+int(f[l3]&0x0f)*4])
	}
	f[p.L4] = p.ICMP.Type
	p.FixICMP()
}

// TooBig replaces the frame with the error that says it does not fit a
// link of mtu: ICMP fragmentation-needed, or ICMPv6 packet-too-big. See
// ICMPError.
func (p *Packet) TooBig(mtu int, src Addr, srcMAC MAC) int {
	if p.V6 {
		return p.ICMPError(ICMP6TooBig, 0, uint32(mtu), src, srcMAC)
	}
	return p.ICMPError(ICMPUnreachable, CodeFragNeeded, uint32(mtu), src, srcMAC)
}

// ICMPError replaces the frame with an ICMP error (ICMPv6 for IPv6) about
// it, sent from src to the frame's source, via srcMAC to the MAC it came
// from: the quoted packet is the start of the original IP datagram (RFC
// 1812, RFC 4443). rest is the header's second word (the MTU of a
// fragmentation-needed or packet-too-big). The frame's slice must have
// room up to 590 bytes, 1294 for IPv6 (a UMEM frame has). It returns the
// new frame length.
func (p *Packet) ICMPError(typ, code uint8, rest uint32, src Addr, srcMAC MAC) int {
	if p.V6 {
		return p.icmpError6(typ, code, rest, src, srcMAC)
	}
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
	copy(ip[16:20], p.Src[12:])
	copy(ip[12:16], src[12:])
	fixIPHeader(ip)
	return p.finishError(f, frameOffL4, frameOffRaw+q, ipproto.ICMP, typ, code, rest, src)
}

func (p *Packet) icmpError6(typ, code uint8, rest uint32, src Addr, srcMAC MAC) int {
	f := p.Frame[:cap(p.Frame)]
	q := min(p.Len(), maxQuote6)
	copy(f[frameOffRaw6:frameOffRaw6+q], f[l3:l3+q])
	copy(f[0:6], f[6:12])
	copy(f[6:12], srcMAC[:])
	ip := f[l3 : l3+ipv6Len]
	binary.BigEndian.PutUint32(ip[0:], 6<<28)
	binary.BigEndian.PutUint16(ip[4:], uint16(icmpLen+q))
	ip[6], ip[7] = byte(ipproto.ICMPv6), 64
	copy(ip[24:40], p.Src[:])
	copy(ip[8:24], src[:])
	return p.finishError(f, frameOffL46, frameOffRaw6+q, ipproto.ICMPv6, typ, code, rest, src)
}

// finishError writes the ICMP header of an error built in f (ending at n)
// and points p at it.
func (p *Packet) finishError(f []byte, l4, n int, proto ipproto.Proto, typ, code uint8, rest uint32, src Addr) int {
	m := f[l4:]
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:], rest)
	p.Frame = f[:n]
	p.Dst, p.Src, p.TTL, p.L4, p.Proto, p.IPLen = p.Src, src, 64, l4, proto, n-l3
	p.ICMP = ICMP{Type: typ, Code: code, Error: true}
	p.FixICMP()
	return n
}

// fixIPHeader recomputes an IPv4 header checksum from scratch.
func fixIPHeader(ip []byte) {
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], checksum.Compute(ip))
}
