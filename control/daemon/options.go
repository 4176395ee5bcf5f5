package daemon

import (
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
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
	// WorkerFlows sizes each worker's express records, used while the
	// table is large: flow directions (AutoWorkerFlows: ConntrackSize
	// shared by the workers; 0: none).
	WorkerFlows int
	XSK         xsk.Options
	// StatePath is the file the desired state is kept in ("": memory only).
	StatePath string
	// APISocket is the Unix socket of the API ("": no API).
	APISocket string
	// MetricsAddr is the TCP address of /metrics ("": off).
	MetricsAddr string
	// StatsInterval logs counters periodically (0: only at exit).
	StatsInterval time.Duration
	// SNATAddrs are the full-NAT source addresses, SNATPorts their port
	// range (inclusive); without addresses, fullnat services are refused.
	SNATAddrs []netip.Addr
	SNATPorts [2]uint16
	// MSSClamp lowers the MSS of forwarded SYNs and SYN-ACKs (0: off).
	MSSClamp uint16
	// BGP seeds the BGP settings of a new state file (see config.Seed).
	BGP *config.BGP
	// BGPDrain is how long a stopping daemon keeps forwarding after it has
	// withdrawn its VIPs, while routers move the traffic away (0: no wait).
	BGPDrain time.Duration
	// Hurry, once closed (a second signal), cuts the drain short.
	Hurry <-chan struct{}
	// ConfigPath is a declarative file (docs/examples/lb.yaml) applied at
	// start and again on every Reload (SIGHUP): the file is the source of
	// truth for services, backends, firewall rules and DoS policies.
	ConfigPath string
	Reload     <-chan struct{}
	// RestartHold keeps the XDP programs attached for up to this long
	// after a stop that saved the flows, dropping what they would steer
	// until the next daemon takes them over (0: detach at once).
	RestartHold time.Duration
}

// MaxRestartHold bounds --restart-hold: what a held program drops, the
// kernel would otherwise answer.
const MaxRestartHold = time.Minute

// MaxBGPDrain bounds --bgp-drain: a stop must not hang for long.
const MaxBGPDrain = 5 * time.Minute

// DefaultSNATPorts is the full-NAT source port range unless --snat-ports
// (SNATPorts zero), for a SNAT address that is not the host's own (see
// snatRange for one that is).
var DefaultSNATPorts = [2]uint16{1024, 65535}

// AutoWorkerFlows sizes the express records by the table (workerFlows).
const AutoWorkerFlows = -1

// workerFlows is the flow directions each of workers workers' records
// hold: as asked, or the table's capacity shared by the workers, which
// RSS spreads the flows over (a NAT flow through one worker takes two
// directions, so a worker's records cover every flow when the table is
// half full of such flows).
func workerFlows(asked, conntrackSize, workers int) int {
	if asked != AutoWorkerFlows {
		return asked
	}
	return min(max(conntrackSize/max(workers, 1), 1), dataplane.MaxWorkerFlows)
}

// validate checks the options before anything is touched.
func (o Options) validate() error {
	if o.ConntrackSize < conntrack.MinCapacity || o.ConntrackSize > conntrack.MaxCapacity {
		return fmt.Errorf("--conntrack-size %d: want %d to %d flows", o.ConntrackSize, conntrack.MinCapacity, conntrack.MaxCapacity)
	}
	if o.WorkerFlows < AutoWorkerFlows || o.WorkerFlows > dataplane.MaxWorkerFlows {
		return fmt.Errorf("--worker-flows %d: want 0 (none) to %d", o.WorkerFlows, dataplane.MaxWorkerFlows)
	}
	if o.Queues < 0 || o.Queues > bpf.MaxQueues {
		return fmt.Errorf("--queues %d: want 0 (all) to %d", o.Queues, bpf.MaxQueues)
	}
	for _, c := range o.CPUs {
		if c < 0 || c >= runtime.NumCPU() {
			return fmt.Errorf("--cpus: CPU %d does not exist (this machine has CPUs 0-%d)", c, runtime.NumCPU()-1)
		}
	}
	if len(o.SNATAddrs) > bpf.MaxSNATAddrs {
		return fmt.Errorf("--snat-addr given %d times: at most %d (MAX_SNAT_ADDRS)", len(o.SNATAddrs), bpf.MaxSNATAddrs)
	}
	seen := map[netip.Addr]bool{}
	for _, a := range o.SNATAddrs {
		if err := config.CheckUnicast(a, "SNAT address"); err != nil {
			return fmt.Errorf("--snat-addr: %w", err)
		}
		if seen[a] {
			return fmt.Errorf("--snat-addr %s given twice", a)
		}
		seen[a] = true
	}
	if lo, hi := o.SNATPorts[0], o.SNATPorts[1]; o.SNATPorts != ([2]uint16{}) {
		if lo == 0 || lo > hi {
			return fmt.Errorf("--snat-ports %d-%d: want FROM-TO with 1 <= FROM <= TO <= 65535", lo, hi)
		}
		if err := snatSpan(o.SNATPorts); err != nil {
			return err
		}
	}
	if o.RestartHold < 0 || o.RestartHold > MaxRestartHold {
		return fmt.Errorf("--restart-hold %s: want 0 to %s", o.RestartHold, MaxRestartHold)
	}
	if o.ConfigPath != "" && len(o.Services) > 0 {
		return fmt.Errorf("--config makes %s the source of truth: give the services there, not with --vip, --backend or --service", o.ConfigPath)
	}
	if o.BGPDrain < 0 || o.BGPDrain > MaxBGPDrain {
		return fmt.Errorf("--bgp-drain %s: want 0 to %s", o.BGPDrain, MaxBGPDrain)
	}
	if o.MSSClamp != 0 && o.MSSClamp < 536 {
		return fmt.Errorf("--mss-clamp %d: want 0 (off) or at least 536", o.MSSClamp)
	}
	return nil
}
