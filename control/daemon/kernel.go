package daemon

import (
	"net/netip"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/bgp"
	"github.com/scmlb-xsk/scmlb-xsk/control/health"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// Kernel is the XDP program's maps as the daemon writes and reads them.
// *bpf.Program implements it; tests use a fake. The setters take the whole
// wanted content; the program writes only the difference.
type Kernel interface {
	SetServices(map[bpf.Endpoint]uint32) error
	SetBackends(map[bpf.Endpoint]uint32) error
	SetBackendHosts(map[netip.Addr][6]byte) error
	SetLocalAddrs([]netip.Addr) error
	SetVIPs([]netip.Addr) error
	SetFirewall([]bpf.FirewallRule) error
	SetDosPolicies([]bpf.DosPolicy) error
	ResetFirewallDrops(slot uint32) error
	ResetDosDrops(slot uint32) error

	FirewallDrops() (map[uint32]bpf.Counter, error)
	DosDrops() (map[uint32]bpf.Counter, error)
	DosBlocked() ([]bpf.Blocked, error)
	ProtoStats() (map[string]bpf.Counter, error)
	VerdictStats() (map[string]bpf.Counter, error)
	StartDump(bpf.DumpFilter) (*bpf.Dumper, error)
	TestRun(frame []byte, ifindex int) (uint32, error)
}

var _ Kernel = (*bpf.Program)(nil)

// Prober runs the backends' health checks (*health.Checker).
type Prober interface {
	Sync([]health.Target)
	Status(id uint32) (health.Status, bool)
}

var _ Prober = (*health.Checker)(nil)

// Hop is a backend's next hop as last resolved: a MAC, or why there is none.
type Hop struct {
	MAC     packet.MAC // zero while unresolved
	Problem string     // "" when resolved, or while the kernel resolves it
}

// NextHops answers from what was last resolved, without asking the kernel:
// the apply path never waits for netlink. The daemon's refresh loop keeps
// it current.
type NextHops interface {
	Backend(addr netip.Addr) Hop
	Client() dataplane.ClientHops
}

// Announcer announces VIPs to routers (*bgp.Speaker); tests use a fake.
type Announcer interface {
	// Announce makes the announced VIPs exactly these.
	Announce([]netip.Addr) error
	// WithdrawAll withdraws everything and announces nothing any more.
	WithdrawAll() error
	Announced() []netip.Addr
	Peers() ([]bgp.PeerStatus, error)
	Stop()
}

var _ Announcer = (*bgp.Speaker)(nil)
