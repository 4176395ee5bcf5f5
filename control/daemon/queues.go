package daemon

import (
	"fmt"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
)

// nic is what queue planning needs to know of an interface.
type nic struct {
	name   string
	queues int // RX queues in use
	rss    int // queues RSS spreads over; 0: unknown (no indirection table)
}

// receiving is how many of the NIC's queues can get packets.
func (n nic) receiving() int {
	if n.rss > 0 {
		return min(n.rss, n.queues)
	}
	return n.queues
}

// planQueues decides how many queue indexes get a worker (one socket per
// NIC each) and refuses a layout that would leave a receiving queue
// without a socket: VIP traffic or replies arriving there would be passed
// to the kernel and lost (no_socket). want 0 means as many as possible.
func planQueues(up, down nic, oneArm bool, want int) (int, error) {
	have := min(up.queues, bpf.MaxQueues)
	if !oneArm {
		have = min(have, down.queues)
	}
	n := have
	if want != 0 {
		if want < 0 || want > have {
			return 0, fmt.Errorf("--queues %d: want 1 to %d (%s)", want, have, queueSummary(up, down, oneArm))
		}
		n = want
	}
	nics := []nic{up}
	if !oneArm {
		nics = append(nics, down)
	}
	for _, x := range nics {
		if r := x.receiving(); r > n {
			return 0, unservedError(x, n, r, up, down, oneArm, want)
		}
	}
	return n, nil
}

func queueSummary(up, down nic, oneArm bool) string {
	if oneArm {
		return fmt.Sprintf("%s has %d RX queues, at most %d are served", up.name, up.queues, bpf.MaxQueues)
	}
	return fmt.Sprintf("%s has %d RX queues, %s has %d; at most %d are served", up.name, up.queues, down.name, down.queues, bpf.MaxQueues)
}

func unservedError(x nic, n, r int, up, down nic, oneArm bool, want int) error {
	why := fmt.Sprintf("--queues %d", want)
	if want == 0 {
		why = queueSummary(up, down, oneArm)
	}
	unserved := fmt.Sprintf("queue %d", n)
	if r-1 > n {
		unserved = fmt.Sprintf("queues %d-%d", n, r-1)
	}
	return fmt.Errorf("%s receives on %d RX queues but only %d can be served (%s): VIP traffic and replies on %s "+
		"would be dropped. Give the NICs the same number of queues (ethtool -L %s combined %d), keep RSS on the "+
		"served queues (ethtool -X %s equal %d), or choose --queues to match",
		x.name, r, n, why, unserved, x.name, n, x.name, n)
}
