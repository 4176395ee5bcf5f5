package conntrack

import "time"

// State is the tracked state of a flow.
type State uint8

const (
	SynSent     State = iota // client SYN seen
	SynRecv                  // backend SYN-ACK seen
	Established              // client ACK after SYN-ACK, or data
	Closing                  // FIN seen
	Closed                   // RST, or both FINs
	UDP                      // UDP "flow"
	numStates
)

var stateNames = [numStates]string{"syn_sent", "syn_recv", "established", "closing", "closed", "udp"}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "unknown"
}

// Timeouts are the idle times after which a flow in a state expires.
type Timeouts [numStates]time.Duration

// DefaultTimeouts are close to the Linux nf_conntrack defaults, shortened for
// established flows as IPVS does.
var DefaultTimeouts = Timeouts{
	SynSent:     30 * time.Second,
	SynRecv:     30 * time.Second,
	Established: 15 * time.Minute,
	Closing:     30 * time.Second,
	Closed:      10 * time.Second,
	UDP:         60 * time.Second,
}

const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

// next is the state after a packet with TCP flags; reply is true for the
// backend->client direction.
func next(s State, flags uint8, reply bool) State {
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
	}
	return s
}
