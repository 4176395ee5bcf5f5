package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/perf"

	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// DumpFilter selects packets to capture; zero fields match anything.
type DumpFilter struct {
	Host    netip.Addr    // source or destination
	Port    uint16        // source or destination
	Proto   ipproto.Proto // Any: every protocol
	Snaplen uint32
}

// DumpRecord is one captured packet with the program's verdict.
type DumpRecord struct {
	Time    time.Time
	Ifindex int
	Queue   int
	Verdict Verdict
	PktLen  int
	Data    []byte // the first Snaplen bytes
}

// Dumper receives packets the XDP program captures while it is open.
type Dumper struct {
	p     *Program
	rd    *perf.Reader
	epoch time.Time // wall clock at monotonic zero
	lost  atomic.Uint64
}

// ErrDumpClosed is returned by Read after Close.
var ErrDumpClosed = errors.New("dump closed")

// StartDump turns capture on with filter f. One dump at a time.
func (p *Program) StartDump(f DumpFilter) (*Dumper, error) {
	rd, err := perf.NewReader(p.objs.DumpEvents, 256*os.Getpagesize())
	if err != nil {
		return nil, fmt.Errorf("open dump perf buffers: %w", err)
	}
	now, _ := monotonic() // never fails on Linux; 0 only skews timestamps
	d := &Dumper{p: p, rd: rd, epoch: time.Now().Add(-time.Duration(now))}
	cfg := xdpDumpCfg{Enabled: 1, Port: f.Port, Proto: uint8(f.Proto), Snaplen: f.Snaplen}
	if f.Host.IsValid() {
		k, err := addrKey(f.Host)
		if err != nil {
			rd.Close()
			return nil, err
		}
		cfg.Addr = k
	}
	if err := p.objs.DumpConfig.Put(uint32(0), cfg); err != nil {
		rd.Close()
		return nil, fmt.Errorf("enable dump: %w", err)
	}
	return d, nil
}

// Read blocks for the next captured packet.
func (d *Dumper) Read() (DumpRecord, error) {
	for {
		rec, err := d.rd.Read()
		if errors.Is(err, perf.ErrClosed) {
			return DumpRecord{}, ErrDumpClosed
		}
		if err != nil {
			return DumpRecord{}, fmt.Errorf("read dump: %w", err)
		}
		if rec.LostSamples > 0 {
			d.lost.Add(rec.LostSamples)
			continue
		}
		var m xdpDumpMeta
		if err := binary.Read(bytes.NewReader(rec.RawSample), binary.LittleEndian, &m); err != nil {
			continue
		}
		data := rec.RawSample[binary.Size(m):]
		if int(m.CapLen) <= len(data) { // the perf record is padded to 8 bytes
			data = data[:m.CapLen]
		}
		return DumpRecord{Time: d.epoch.Add(time.Duration(m.Ts)), Ifindex: int(m.Ifindex), Queue: int(m.Queue),
			Verdict: Verdict(m.Verdict), PktLen: int(m.PktLen), Data: data}, nil
	}
}

// Lost is how many records the kernel dropped because the buffer was full.
func (d *Dumper) Lost() uint64 { return d.lost.Load() }

// Close turns capture off and releases the buffers; Read returns ErrDumpClosed.
func (d *Dumper) Close() error {
	err := d.p.objs.DumpConfig.Put(uint32(0), xdpDumpCfg{})
	return errors.Join(err, d.rd.Close())
}
