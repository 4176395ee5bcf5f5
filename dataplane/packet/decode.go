package packet

import (
	"encoding/binary"

	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// MAC is an Ethernet address.
type MAC [6]byte

// Protocol numbers handled by the dataplane.
const (
	ProtoTCP = ipproto.TCP
	ProtoUDP = ipproto.UDP
)

// TCP flags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagACK = 0x10
)

// Result says why a frame was or was not decoded.
type Result uint8

const (
	OK Result = iota
	ErrTruncated
	ErrNotIP     // another EtherType, or an IP version that does not match it
	ErrBadHeader // IHL < 5, total length shorter than the header, TCP data offset < 5, too many IPv6 extension headers
	ErrFragment  // IPv4 fragment or IPv6 fragment header: ports unknown or payload incomplete
	ErrProto     // not TCP, UDP or an ICMP message the worker handles
	NumResults
)

var resultNames = [NumResults]string{"ok", "truncated", "not_ip", "bad_header", "fragment", "unsupported_proto"}

func (r Result) String() string {
	if r < NumResults {
		return resultNames[r]
	}
	return "unknown"
}

// NoWScale is Segment.WScale when a SYN carries no window scale option (or
// the segment is no SYN).
const NoWScale = 0xff

// Segment is what conntrack needs of a TCP header to follow the sequence
// space: enough to tell a plausible RST from a blind one. Zero for UDP.
type Segment struct {
	Flags  uint8
	WScale uint8  // window scale option of a SYN, NoWScale if none
	Win    uint16 // window field, unscaled
	Seq    uint32
	Len    uint32 // sequence space used: payload, +1 for SYN, +1 for FIN
}

// Packet is a decoded view of a frame. Fields point into Frame; a Packet is
// reused for every frame a worker sees.
type Packet struct {
	Frame    []byte
	L4       int // offset of the TCP/UDP/ICMP header in Frame
	IPLen    int // the IP datagram's length, headers included (Ethernet padding excluded)
	V6       bool
	Proto    ipproto.Proto // upper-layer protocol (for IPv6: after the extension headers)
	TTL      uint8         // IPv4 TTL or IPv6 hop limit
	Src, Dst Addr
	SrcPort  uint16 // TCP/UDP; 0 for ICMP
	DstPort  uint16
	Seg      Segment
	ICMP     ICMP // Proto ICMP only
}

// Offsets in the Ethernet and IPv4 headers.
const (
	ethLen    = 14
	ipv4Min   = 20
	l3        = ethLen
	ipTotal   = l3 + 2
	ipFrag    = l3 + 6
	ipTTL     = l3 + 8
	ipProto   = l3 + 9
	ipCsum    = l3 + 10
	ipSrc     = l3 + 12
	ipDst     = l3 + 16
	tcpSeq    = 4
	tcpOff    = 12
	tcpFlags  = 13
	tcpWin    = 14
	tcpMinLen = 20

	ipv6Len   = 40
	ip6Plen   = l3 + 4
	ip6Next   = l3 + 6
	ip6Hop    = l3 + 7
	ip6Src    = l3 + 8
	ip6Dst    = l3 + 24
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
)

// IPv6 extension headers the decoder walks over (RFC 8200 4.1), and the
// fragment header, which makes a packet a fragment.
const (
	ext6HopByHop = 0
	ext6Routing  = 43
	ext6Fragment = 44
	ext6DestOpts = 60
	// MaxExtHeaders bounds the walk, as the XDP program's is bounded: a
	// packet with more is ErrBadHeader.
	MaxExtHeaders = 4
)

// Decode parses frame into p. Only untagged IPv4 and IPv6 carrying TCP,
// UDP or ICMP are accepted; IPv4 options are skipped by IHL, IPv6
// extension headers by walking them (at most MaxExtHeaders). Ethernet
// padding after the IP datagram is allowed.
func Decode(frame []byte, p *Packet) Result {
	p.Frame = frame
	if len(frame) < ethLen {
		return ErrTruncated
	}
	var r Result
	switch binary.BigEndian.Uint16(frame[12:]) {
	case etherIPv4:
		r = p.decode4()
	case etherIPv6:
		r = p.decode6()
	default:
		return ErrNotIP
	}
	if r != OK {
		return r
	}
	return p.decodeL4(p.IPLen - (p.L4 - l3))
}

func (p *Packet) decode4() Result {
	frame := p.Frame
	if len(frame) < ethLen+ipv4Min {
		return ErrTruncated
	}
	if frame[l3]>>4 != 4 {
		return ErrNotIP
	}
	ihl := int(frame[l3]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(frame[ipTotal:]))
	if ihl < ipv4Min || total < ihl {
		return ErrBadHeader
	}
	if l3+total > len(frame) {
		return ErrTruncated
	}
	if binary.BigEndian.Uint16(frame[ipFrag:])&0x3fff != 0 { // MF or offset
		return ErrFragment
	}
	p.V6 = false
	p.IPLen = total
	p.Proto = ipproto.Proto(frame[ipProto])
	p.TTL = frame[ipTTL]
	p.Src.set4(frame[ipSrc:])
	p.Dst.set4(frame[ipDst:])
	p.L4 = l3 + ihl
	return OK
}

func (p *Packet) decode6() Result {
	frame := p.Frame
	if len(frame) < ethLen+ipv6Len {
		return ErrTruncated
	}
	if frame[l3]>>4 != 6 {
		return ErrNotIP
	}
	total := ipv6Len + int(binary.BigEndian.Uint16(frame[ip6Plen:]))
	if l3+total > len(frame) {
		return ErrTruncated
	}
	p.V6 = true
	p.IPLen = total
	p.TTL = frame[ip6Hop]
	p.Src = Addr(frame[ip6Src : ip6Src+16])
	p.Dst = Addr(frame[ip6Dst : ip6Dst+16])
	next, off, r := walkExt6(frame[l3:l3+total], frame[ip6Next], ipv6Len)
	if r != OK {
		return r
	}
	p.Proto = ipproto.Proto(next)
	p.L4 = l3 + off
	return OK
}

// walkExt6 skips the extension headers of an IPv6 packet pkt (from its
// IPv6 header on) that start at off with type next; it returns the
// upper-layer protocol and its offset. A fragment header is ErrFragment.
func walkExt6(pkt []byte, next byte, off int) (byte, int, Result) {
	for range MaxExtHeaders + 1 {
		switch next {
		case ext6HopByHop, ext6Routing, ext6DestOpts:
		case ext6Fragment:
			return 0, 0, ErrFragment
		default:
			return next, off, OK
		}
		if off+8 > len(pkt) {
			return 0, 0, ErrTruncated
		}
		next = pkt[off]
		off += (int(pkt[off+1]) + 1) * 8
		if off > len(pkt) {
			return 0, 0, ErrTruncated
		}
	}
	return 0, 0, ErrBadHeader
}

func (p *Packet) decodeL4(l4len int) Result {
	frame := p.Frame
	switch p.Proto {
	case ProtoTCP:
		if l4len < tcpMinLen {
			return ErrTruncated
		}
		if r := p.decodeTCP(l4len); r != OK {
			return r
		}
	case ProtoUDP:
		if l4len < 8 {
			return ErrTruncated
		}
		p.Seg = Segment{}
	case ipproto.ICMP, ipproto.ICMPv6:
		if (p.Proto == ipproto.ICMPv6) != p.V6 {
			return ErrProto
		}
		p.Seg, p.SrcPort, p.DstPort = Segment{}, 0, 0
		return p.decodeICMP(l4len)
	default:
		return ErrProto
	}
	p.SrcPort = binary.BigEndian.Uint16(frame[p.L4:])
	p.DstPort = binary.BigEndian.Uint16(frame[p.L4+2:])
	return OK
}

func (p *Packet) decodeTCP(l4len int) Result {
	t := p.Frame[p.L4:]
	doff := int(t[tcpOff]>>4) * 4
	if doff < tcpMinLen {
		return ErrBadHeader
	}
	if doff > l4len {
		return ErrTruncated
	}
	s := &p.Seg
	s.Flags = t[tcpFlags]
	s.Win = binary.BigEndian.Uint16(t[tcpWin:])
	s.Seq = binary.BigEndian.Uint32(t[tcpSeq:])
	s.Len = uint32(l4len - doff)
	s.WScale = NoWScale
	if s.Flags&FlagSYN != 0 {
		s.Len++
		s.WScale = windowScale(t[tcpMinLen:doff])
	}
	if s.Flags&FlagFIN != 0 {
		s.Len++
	}
	return OK
}

// windowScale finds the window scale option (kind 3) in TCP options.
func windowScale(opts []byte) uint8 {
	if i := tcpOption(opts, 3, 3); i >= 0 {
		return min(opts[i+2], 14) // RFC 7323: larger values are taken as 14
	}
	return NoWScale
}

// tcpOption returns the offset of option kind with length n in TCP options,
// or -1; a malformed list ends the search.
func tcpOption(opts []byte, kind, n byte) int {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0:
			return -1
		case 1:
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return -1
		}
		if opts[i] == kind && opts[i+1] == n {
			return i
		}
		i += int(opts[i+1])
	}
	return -1
}

// Tuple returns the 5-tuple of a decoded packet.
func (p *Packet) Tuple() Tuple {
	return Tuple{Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort, Proto: p.Proto}
}

// TupleTo writes the 5-tuple of a decoded packet into t, field by field:
// on the per-packet path, where Tuple's result, built and then copied in
// 16-byte moves over its smaller stores, stalled on store forwarding.
func (p *Packet) TupleTo(t *Tuple) {
	t.Src, t.Dst, t.SrcPort, t.DstPort, t.Proto = p.Src, p.Dst, p.SrcPort, p.DstPort, p.Proto
}

// Len is the length of the IP datagram (headers + payload), for byte
// counters and MTU checks.
func (p *Packet) Len() int { return p.IPLen }
