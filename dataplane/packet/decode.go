package packet

import "encoding/binary"

// Addr is an IPv4 address in network order.
type Addr [4]byte

// MAC is an Ethernet address.
type MAC [6]byte

// Protocol numbers handled by the dataplane.
const (
	ProtoTCP = 6
	ProtoUDP = 17
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
	ErrBadHeader // IHL < 5, or total length shorter than the header
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

// Packet is a decoded view of a frame. Fields point into Frame; a Packet is
// reused for every frame a worker sees.
type Packet struct {
	Frame    []byte
	L4       int // offset of the TCP/UDP header in Frame
	Proto    uint8
	TCPFlags uint8
	Src, Dst Addr
	SrcPort  uint16
	DstPort  uint16
}

const (
	ethLen  = 14
	ipv4Min = 20
	l3      = ethLen
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
	total := int(binary.BigEndian.Uint16(frame[l3+2:]))
	if ihl < ipv4Min || total < ihl {
		return ErrBadHeader
	}
	if l3+total > len(frame) {
		return ErrTruncated
	}
	if binary.BigEndian.Uint16(frame[l3+6:])&0x3fff != 0 { // MF or offset
		return ErrFragment
	}
	p.Proto = frame[l3+9]
	p.Src = Addr(frame[l3+12 : l3+16])
	p.Dst = Addr(frame[l3+16 : l3+20])
	p.L4 = l3 + ihl
	l4len := total - ihl
	switch p.Proto {
	case ProtoTCP:
		if l4len < 20 {
			return ErrTruncated
		}
		p.TCPFlags = frame[p.L4+13]
	case ProtoUDP:
		if l4len < 8 {
			return ErrTruncated
		}
		p.TCPFlags = 0
	default:
		return ErrProto
	}
	p.SrcPort = binary.BigEndian.Uint16(frame[p.L4:])
	p.DstPort = binary.BigEndian.Uint16(frame[p.L4+2:])
	return OK
}

// Tuple returns the 5-tuple of a decoded packet.
func (p *Packet) Tuple() Tuple {
	return Tuple{Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort, Proto: p.Proto}
}

// Len is the length of the IP datagram (header + payload), for byte counters.
func (p *Packet) Len() int {
	return int(binary.BigEndian.Uint16(p.Frame[l3+2:]))
}
