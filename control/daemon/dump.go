package daemon

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// tapDepth is how many worker captures may wait for the API stream.
const tapDepth = 1024

// dumpSession merges captures from the XDP program and from the workers.
type dumpSession struct {
	c        *core
	xdp      *bpf.Dumper
	xdpC     chan api.DumpPacket
	tap      *dataplane.Tap
	left     int
	deadline *time.Timer
	done     chan struct{}
	closed   bool
}

// StartDump begins a capture; one at a time.
func (c *core) StartDump(req api.DumpRequest) (api.DumpSession, error) {
	proto, err := config.ParseFilterProto(req.Proto)
	if err != nil {
		return nil, err
	}
	if !c.env.dumping.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("%w: a dump is already running", config.ErrConflict)
	}
	s := &dumpSession{c: c, left: req.Count, deadline: time.NewTimer(req.Duration), done: make(chan struct{})}
	if req.At != "worker" {
		x, err := c.kern.StartDump(bpf.DumpFilter{Host: req.Host, Port: req.Port, Proto: proto, Snaplen: uint32(req.Snaplen)})
		if err != nil {
			s.Close()
			return nil, err
		}
		s.xdp, s.xdpC = x, make(chan api.DumpPacket, 256)
		go s.readXDP()
	}
	if req.At != "xdp" {
		f := dataplane.TapFilter{Port: req.Port, Proto: proto}
		if req.Host.IsValid() {
			f.Host = packet.AddrFrom(req.Host)
		}
		s.tap = dataplane.NewTap(f, req.Snaplen, tapDepth)
		c.eng.SetTap(s.tap)
	}
	c.log.Info("dump started", zap.String("at", req.At), zap.Stringer("host", req.Host), zap.Uint16("port", req.Port),
		zap.String("proto", req.Proto), zap.Int("count", req.Count), zap.Duration("duration", req.Duration))
	return s, nil
}

func (s *dumpSession) readXDP() {
	for {
		r, err := s.xdp.Read()
		if err != nil {
			return
		}
		p := api.DumpPacket{Time: r.Time, Interface: s.c.env.ifName(r.Ifindex), Stage: "xdp", Verdict: r.Verdict.String(),
			OrigLen: r.PktLen, Data: r.Data}
		select {
		case s.xdpC <- p:
		case <-s.done:
			return
		}
	}
}

// Next returns the next packet, or io.EOF once the count or time is used up.
func (s *dumpSession) Next(ctx context.Context) (api.DumpPacket, error) {
	if s.left == 0 {
		return api.DumpPacket{}, io.EOF
	}
	var tapC <-chan *dataplane.Captured
	if s.tap != nil {
		tapC = s.tap.C()
	}
	select {
	case <-ctx.Done():
		return api.DumpPacket{}, ctx.Err()
	case <-s.deadline.C:
		s.left = 0
		return api.DumpPacket{}, io.EOF
	case p := <-s.xdpC:
		s.left--
		return p, nil
	case c := <-tapC:
		s.left--
		side := s.c.env.upName
		if c.Side == dataplane.SideBackend {
			side = s.c.env.downName
		}
		p := api.DumpPacket{Time: time.Unix(0, c.Time), Interface: side, Stage: "worker", Verdict: c.Verdict,
			OrigLen: c.Len, Data: append([]byte(nil), c.Data...)}
		s.tap.Release(c)
		return p, nil
	}
}

// Close stops capturing in the kernel and the workers.
func (s *dumpSession) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	s.deadline.Stop()
	var err error
	var lost, missed uint64
	if s.xdp != nil {
		err = s.xdp.Close()
		lost = s.xdp.Lost()
	}
	if s.tap != nil {
		s.c.eng.SetTap(nil)
		missed = s.tap.Missed()
	}
	s.c.env.dumping.Store(false)
	s.c.log.Info("dump ended", zap.Uint64("xdp_lost", lost), zap.Uint64("worker_missed", missed))
	return err
}
