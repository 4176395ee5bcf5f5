package daemon

import (
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/xsk"
)

// Options configure one daemon run.
type Options struct {
	Upstream  string // interface facing clients
	BackendIf string // interface facing backends; "" or same as Upstream: one-arm
	Mode      bpf.Mode
	Queues    int   // RX queues to serve (0: all queues both interfaces have)
	CPUs      []int // worker i is pinned to CPUs[i % len]; empty: no pinning
	Services  []config.Service
	// ConntrackSize bounds the flow table.
	ConntrackSize int
	XSK           xsk.Options
	// StatePath is the file the desired state is kept in ("": memory only).
	StatePath string
	// APISocket is the Unix socket of the API ("": no API).
	APISocket string
	// MetricsAddr is the TCP address of /metrics ("": off).
	MetricsAddr string
	// StatsInterval logs counters periodically (0: only at exit).
	StatsInterval time.Duration
}
