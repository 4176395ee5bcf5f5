package conntrack

import (
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// State is the tracked state of a flow.
type State uint8

const (
	SynSent     State = iota // client SYN seen
	SynRecv                  // backend SYN-ACK seen
	Established              // handshake done, or a mid-stream flow the backend answered
	Closing                  // FIN seen
	Closed                   // in-window RST, or both FINs
	UDP                      // UDP "flow"
	MidStream                // picked up without a SYN, the backend has not answered yet
	numStates
)

var stateNames = [numStates]string{"syn_sent", "syn_recv", "established", "closing", "closed", "udp", "mid_stream"}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "unknown"
}

// Timeouts are the idle times after which a flow in a state expires.
type Timeouts [numStates]time.Duration

// DefaultTimeouts are close to the Linux nf_conntrack defaults, shortened for
// established flows as IPVS does. A flow picked up mid-stream (a bare ACK:
// after a daemon restart, or spoofed) gets a short timeout until the backend
// answers, so spoofed ACKs cannot fill the table with 15-minute entries.
var DefaultTimeouts = Timeouts{
	SynSent:     30 * time.Second,
	SynRecv:     30 * time.Second,
	Established: 15 * time.Minute,
	Closing:     30 * time.Second,
	Closed:      10 * time.Second,
	UDP:         60 * time.Second,
	MidStream:   30 * time.Second,
}

const (
	flagFIN = packet.FlagFIN
	flagSYN = packet.FlagSYN
	flagRST = packet.FlagRST
	flagACK = packet.FlagACK
)

// next is the state after a packet with TCP flags; reply is true for the
// backend->client direction. An RST reaches it only once it is known to be
// in the window (see track.rstInWindow). A one-way (DSR) flow never shows
// the backend's SYN-ACK: the client's first ACK establishes it.
func next(s State, flags uint8, reply, oneWay bool) State {
	switch {
	case s == UDP:
		return UDP
	case flags&flagRST != 0:
		return Closed
	case flags&flagFIN != 0:
		if s == Closing {
			return Closed
		}
		return Closing
	case s == SynSent && reply && flags&(flagSYN|flagACK) == flagSYN|flagACK:
		return SynRecv
	case s == SynRecv && !reply && flags&flagACK != 0:
		return Established
	case s == SynSent && oneWay && flags&(flagSYN|flagACK) == flagACK:
		return Established
	case s == MidStream && reply:
		return Established
	}
	return s
}

// firstState is the state of a new flow from its first packet.
func firstState(proto ipproto.Proto, flags uint8, reply bool) State {
	switch {
	case proto == packet.ProtoUDP:
		return UDP
	case reply:
		return Established // rebuilt from a backend's packet: the backend knows the flow
	case flags&flagSYN == 0:
		return MidStream
	}
	return SynSent
}

// direction is one side's sequence space as the flow's packets show it.
type direction struct {
	end    uint32 // highest seq + len sent
	win    uint16 // last window field, unscaled
	wscale uint8  // from its SYN; packet.NoWScale if none seen
	known  bool   // a segment from this side was seen
}

// track follows both directions' sequence space, enough to ignore RSTs
// that do not fit the window (RFC 5961: a blind attacker must guess the
// sequence number), as Linux conntrack does.
type track [2]direction

func (t *track) update(seg *packet.Segment, reply bool) {
	d := &t[dirIndex(reply)]
	if seg.Flags&flagSYN != 0 {
		d.wscale = seg.WScale
	}
	end := seg.Seq + seg.Len
	if !d.known || int32(end-d.end) > 0 {
		d.end = end
	}
	d.win, d.known = seg.Win, true
}

// rstInWindow reports whether an RST from one side falls within the window
// the other side last advertised, around the next sequence number the
// sender would use. A side never seen cannot be checked and is trusted.
func (t *track) rstInWindow(seg *packet.Segment, reply bool) bool {
	d, o := &t[dirIndex(reply)], &t[dirIndex(!reply)]
	if !d.known {
		return true
	}
	w := uint32(65535)
	if o.known {
		w = uint32(o.win)
		if d.wscale != packet.NoWScale && o.wscale != packet.NoWScale {
			w <<= o.wscale // scaling is on only when both SYNs offered it (RFC 7323)
		}
		w = max(w, 1)
	}
	off := seg.Seq - (d.end - w) // modular: inside iff off <= 2w
	return off <= 2*w
}

func dirIndex(reply bool) int {
	if reply {
		return 1
	}
	return 0
}
