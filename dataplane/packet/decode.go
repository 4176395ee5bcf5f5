package packet

import (
	"encoding/binary"

	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// Addr is an IPv4 address in network order.
type Addr [4]byte

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
	ErrNotIPv4   // another EtherType, or IP version != 4
	ErrBadHeader // IHL < 5, total length shorter than the header, TCP data offset < 5
	ErrFragment  // IPv4 fragment: ports unknown or payload incomplete
	ErrProto     // not TCP or UDP
	NumResults
)

var resultNames = [NumResults]string{"ok", "truncated", "not_ipv4", "bad_header", "fragment", "unsupported_proto"}

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
	Proto    ipproto.Proto
	TTL      uint8
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
)

// Decode parses frame into p. Only untagged IPv4 TCP/UDP is accepted; IP
// options are skipped by IHL. Ethernet padding after the IP total length is
// allowed.
func Decode(frame []byte, p *Packet) Result {
	p.Frame = frame
	if len(frame) < ethLen+ipv4Min {
		if len(frame) >= ethLen && binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
			return ErrNotIPv4
		}
		return ErrTruncated
	}
	if binary.BigEndian.Uint16(frame[12:]) != 0x0800 || frame[l3]>>4 != 4 {
		return ErrNotIPv4
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
	p.Proto = ipproto.Proto(frame[ipProto])
	p.TTL = frame[ipTTL]
	p.Src = Addr(frame[ipSrc : ipSrc+4])
	p.Dst = Addr(frame[ipDst : ipDst+4])
	p.L4 = l3 + ihl
	l4len := total - ihl
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
	case ipproto.ICMP:
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

// Len is the length of the IP datagram (header + payload), for byte counters.
func (p *Packet) Len() int {
	return int(binary.BigEndian.Uint16(p.Frame[ipTotal:]))
}
