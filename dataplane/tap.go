package dataplane

import (
	"sync/atomic"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// Side is which NIC a captured packet belongs to.
type Side uint8

const (
	SideUpstream Side = iota
	SideBackend
)

// TapFilter selects packets; zero fields match anything. A packet the
// worker could not decode matches only a filter that is all zero.
type TapFilter struct {
	Host  packet.Addr   // source or destination
	Port  uint16        // source or destination
	Proto ipproto.Proto // Any: every protocol
}

// Captured is one packet as the worker sent or dropped it.
type Captured struct {
	Time    int64  // unix nanoseconds
	Verdict string // "forward", "reply" or "drop:<reason>"
	Side    Side   // NIC it leaves by, or (dropped) arrived on
	Len     int    // frame length
	Data    []byte // the first snaplen bytes
}

// Tap copies matching packets out of the workers into preallocated
// buffers; when they are all in use packets are counted as missed, never
// waited for.
type Tap struct {
	filter TapFilter
	free   chan *Captured
	out    chan *Captured
	missed atomic.Uint64
}

// NewTap preallocates depth buffers of snaplen bytes.
func NewTap(f TapFilter, snaplen, depth int) *Tap {
	t := &Tap{filter: f, free: make(chan *Captured, depth), out: make(chan *Captured, depth)}
	for i := 0; i < depth; i++ {
		t.free <- &Captured{Data: make([]byte, snaplen)}
	}
	return t
}

// C delivers captured packets; give each back with Release.
func (t *Tap) C() <-chan *Captured { return t.out }

// Release returns a buffer.
func (t *Tap) Release(c *Captured) { t.free <- c }

// Missed counts packets not captured for want of a free buffer.
func (t *Tap) Missed() uint64 { return t.missed.Load() }

// SetTap starts (t != nil) or stops capturing in every worker.
func (e *Engine) SetTap(t *Tap) { e.tap.Store(t) }

func (t *Tap) matches(p *packet.Packet, decoded bool) bool {
	f := &t.filter
	if !decoded {
		return *f == TapFilter{}
	}
	return (f.Proto == 0 || f.Proto == p.Proto) &&
		(f.Host == packet.Addr{} || f.Host == p.Src || f.Host == p.Dst) &&
		(f.Port == 0 || f.Port == p.SrcPort || f.Port == p.DstPort)
}

func (t *Tap) offer(now int64, p *packet.Packet, decoded bool, frame []byte, verdict string, side Side) {
	if !t.matches(p, decoded) {
		return
	}
	select {
	case c := <-t.free:
		c.Time, c.Verdict, c.Side, c.Len = now, verdict, side, len(frame)
		c.Data = c.Data[:copy(c.Data[:cap(c.Data)], frame)]
		t.out <- c // never blocks: out holds as many as there are buffers
	default:
		t.missed.Add(1)
	}
}
