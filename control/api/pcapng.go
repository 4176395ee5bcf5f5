package api

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// DumpPacket is one captured packet. In the pcapng stream the stage and
// verdict travel as the packet's comment ("xdp steer_service"), which
// tshark shows and tcpdump ignores.
type DumpPacket struct {
	Time      time.Time
	Interface string
	Stage     string // "xdp" or "worker"
	Verdict   string
	OrigLen   int
	Data      []byte
}

// pcapng block types and options (draft-ietf-opsawg-pcapng).
const (
	blockSHB   = 0x0A0D0D0A
	blockIDB   = 0x00000001
	blockEPB   = 0x00000006
	byteOrder  = 0x1A2B3C4D
	optEnd     = 0
	optComment = 1
	optIfName  = 2
	linkEther  = 1
)

// PcapngWriter writes a pcapng section, adding an interface block the first
// time an interface name is seen.
type PcapngWriter struct {
	w       io.Writer
	ifaces  map[string]uint32
	snaplen uint32
}

// NewPcapngWriter writes the section header.
func NewPcapngWriter(w io.Writer, snaplen int) (*PcapngWriter, error) {
	p := &PcapngWriter{w: w, ifaces: map[string]uint32{}, snaplen: uint32(snaplen)}
	body := make([]byte, 16)
	binary.LittleEndian.PutUint32(body[0:], byteOrder)
	binary.LittleEndian.PutUint16(body[4:], 1) // major
	binary.LittleEndian.PutUint16(body[6:], 0) // minor
	binary.LittleEndian.PutUint64(body[8:], ^uint64(0))
	return p, p.block(blockSHB, body)
}

// Write adds one packet.
func (p *PcapngWriter) Write(pkt DumpPacket) error {
	id, ok := p.ifaces[pkt.Interface]
	if !ok {
		id = uint32(len(p.ifaces))
		body := make([]byte, 8)
		binary.LittleEndian.PutUint16(body[0:], linkEther)
		binary.LittleEndian.PutUint32(body[4:], p.snaplen)
		body = append(body, option(optIfName, pkt.Interface)...)
		body = append(body, 0, 0, 0, 0) // opt_endofopt
		if err := p.block(blockIDB, body); err != nil {
			return err
		}
		p.ifaces[pkt.Interface] = id
	}
	ts := uint64(pkt.Time.UnixMicro()) // default resolution: microseconds
	body := make([]byte, 20, 20+len(pkt.Data)+64)
	binary.LittleEndian.PutUint32(body[0:], id)
	binary.LittleEndian.PutUint32(body[4:], uint32(ts>>32))
	binary.LittleEndian.PutUint32(body[8:], uint32(ts))
	binary.LittleEndian.PutUint32(body[12:], uint32(len(pkt.Data)))
	binary.LittleEndian.PutUint32(body[16:], uint32(pkt.OrigLen))
	body = append(body, pad(pkt.Data)...)
	body = append(body, option(optComment, pkt.Stage+" "+pkt.Verdict)...)
	body = append(body, 0, 0, 0, 0)
	return p.block(blockEPB, body)
}

func (p *PcapngWriter) block(typ uint32, body []byte) error {
	n := uint32(12 + len(body))
	buf := make([]byte, 0, n)
	buf = binary.LittleEndian.AppendUint32(buf, typ)
	buf = binary.LittleEndian.AppendUint32(buf, n)
	buf = append(buf, body...)
	buf = binary.LittleEndian.AppendUint32(buf, n)
	_, err := p.w.Write(buf)
	return err
}

func option(code uint16, value string) []byte {
	b := binary.LittleEndian.AppendUint16(nil, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(value)))
	return append(b, pad([]byte(value))...)
}

func pad(b []byte) []byte {
	out := append([]byte(nil), b...)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}

// ReadPcapng calls fn for every packet of a stream written by PcapngWriter.
func ReadPcapng(r io.Reader, fn func(DumpPacket) error) error {
	br := bufio.NewReader(r)
	var ifaces []string
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("pcapng: %w", err)
		}
		typ, n := binary.LittleEndian.Uint32(hdr[0:]), binary.LittleEndian.Uint32(hdr[4:])
		if n < 12 || n > 1<<24 {
			return fmt.Errorf("pcapng: block length %d", n)
		}
		rest := make([]byte, n-8)
		if _, err := io.ReadFull(br, rest); err != nil {
			return fmt.Errorf("pcapng: %w", err)
		}
		body := rest[:len(rest)-4]
		switch typ {
		case blockSHB:
			if len(body) < 4 || binary.LittleEndian.Uint32(body) != byteOrder {
				return errors.New("pcapng: not a little-endian section")
			}
			ifaces = nil
		case blockIDB:
			ifaces = append(ifaces, options(body[8:])[optIfName])
		case blockEPB:
			if len(body) < 20 {
				return errors.New("pcapng: short packet block")
			}
			id := binary.LittleEndian.Uint32(body[0:])
			ts := uint64(binary.LittleEndian.Uint32(body[4:]))<<32 | uint64(binary.LittleEndian.Uint32(body[8:]))
			capLen := int(binary.LittleEndian.Uint32(body[12:]))
			if int(id) >= len(ifaces) || 20+capLen > len(body) {
				return errors.New("pcapng: bad packet block")
			}
			data := body[20 : 20+capLen]
			stage, verdict, _ := strings.Cut(options(body[20+(capLen+3)/4*4:])[optComment], " ")
			pkt := DumpPacket{Time: time.UnixMicro(int64(ts)), Interface: ifaces[id], Stage: stage, Verdict: verdict,
				OrigLen: int(binary.LittleEndian.Uint32(body[16:])), Data: data}
			if err := fn(pkt); err != nil {
				return err
			}
		}
	}
}

func options(b []byte) map[uint16]string {
	out := map[uint16]string{}
	for len(b) >= 4 {
		code, n := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
		if code == optEnd || 4+n > len(b) {
			break
		}
		out[code] = string(b[4 : 4+n])
		b = b[4+(n+3)/4*4:]
	}
	return out
}
