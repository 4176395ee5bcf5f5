package testenv

import (
	"fmt"
	"net/netip"

	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
)

// Topology selects how the load balancer is wired.
type Topology int

const (
	// TwoArm: client <-> lb "up0"; lb "down0" <-> bridge <-> backends.
	TwoArm Topology = iota
	// OneArm: client, lb "eth0" and backends all on one bridge; the lb
	// holds both subnets' gateway addresses on its single interface.
	OneArm
)

// Lab is clients, a load balancer and backends in namespaces.
//
//	client i  10.0.1.(2+i)/24 (default via 10.0.1.1)
//	lb        10.0.1.1/24 and 10.0.2.1/24
//	backend i 10.0.2.(11+i)/24 (default via 10.0.2.1)
//	VIP       10.0.100.1 (routed to the lb, configured nowhere)
//
// Two-arm: clients and lb "up0" on bridge br1, lb "down0" and backends on
// br0. One-arm: everything on br0, the lb holding both gateway addresses on
// "eth0". The bridges live in a switch namespace.
type Lab struct {
	Client      *NS // Clients[0]
	Clients     []*NS
	LB          *NS
	Router      *NS // with LabConfig.Router
	Switch      *NS
	Backends    []*NS
	ClientAddr  netip.Addr // ClientAddrs[0]
	ClientAddrs []netip.Addr
	// Interfaces inside LB.
	UpstreamIf, BackendIf string
	VIP                   netip.Addr
	BackendAddrs          []netip.Addr
	// With LabConfig.IPv6: the same world in IPv6.
	VIP6                        netip.Addr
	ClientAddrs6, BackendAddrs6 []netip.Addr
}

// The load balancer's IPv6 addresses in a dual-stack lab (LabConfig.IPv6):
// client side and backend side, the hosts' default gateways.
var (
	LBUp6   = netip.MustParseAddr("2001:db8:1::1")
	LBDown6 = netip.MustParseAddr("2001:db8:2::1")
)

// LabConfig sizes a lab; zero Clients means one.
type LabConfig struct {
	Topology Topology
	Backends int
	Clients  int
	// Router adds a router namespace on both networks (10.0.1.254 and
	// 10.0.2.254): a way from the backends to the clients that does not pass
	// the load balancer, for DSR.
	Router bool
	// UpQueues and DownQueues give the LB's upstream and backend veths (and
	// their bridge-side peers) that many RX/TX queues; 0 means one. On veth
	// the sender's TX queue picks the receiver's RX queue, so both ends get
	// the same count and flows spread over the queues.
	UpQueues, DownQueues int
	// ClientQueues gives the clients' veths (both ends) that many queues.
	ClientQueues int
	// IPv6 makes the lab dual-stack: client i 2001:db8:1::(2+i)/64,
	// lb 2001:db8:1::1 and 2001:db8:2::1, backend i 2001:db8:2::(11+i)/64
	// (hex), VIP6 2001:db8:100::1; default routes via the lb.
	IPv6 bool
	// BackendLinkMTU is the MTU of the LB's backend interface in two-arm
	// mode (0: 1500); the backends' own links keep 1500.
	BackendLinkMTU int
}

// NewLab builds the topology; everything is removed on cleanup.
func NewLab(c Cleaner, cfg LabConfig) (*Lab, error) {
	p := UniquePrefix()
	l := &Lab{VIP: netip.MustParseAddr("10.0.100.1")}
	ns := &namespaces{c: c, prefix: p}
	mk := ns.make
	l.LB, l.Switch = mk("lb"), mk("sw")
	for i := 0; i < max(cfg.Clients, 1); i++ {
		l.Clients = append(l.Clients, mk(fmt.Sprintf("c%d", i+1)))
		l.ClientAddrs = append(l.ClientAddrs, netip.MustParseAddr(fmt.Sprintf("10.0.1.%d", 2+i)))
	}
	l.makeBackends(ns, cfg.Backends)
	if ns.err != nil {
		return nil, ns.err
	}
	l.Client, l.ClientAddr = l.Clients[0], l.ClientAddrs[0]
	if err := l.Switch.ipAll([][]string{{"link", "add", "br0", "type", "bridge"}, {"link", "set", "br0", "up"},
		{"link", "add", "br1", "type", "bridge"}, {"link", "set", "br1", "up"}}); err != nil {
		return nil, err
	}
	upBridge := "br1"
	if cfg.Topology == TwoArm {
		l.UpstreamIf, l.BackendIf = "up0", "down0"
		if err := l.portOnBridge(l.LB, "up0", "br1", "plbu", cfg.UpQueues); err != nil {
			return nil, err
		}
		if err := l.portOnBridge(l.LB, "down0", "br0", "plb", cfg.DownQueues); err != nil {
			return nil, err
		}
		if err := l.LB.ipAll([][]string{
			{"addr", "add", "10.0.1.1/24", "dev", "up0"}, {"addr", "add", "10.0.2.1/24", "dev", "down0"},
			{"link", "set", "up0", "up"}, {"link", "set", "down0", "up"}}); err != nil {
			return nil, err
		}
	} else {
		l.UpstreamIf, l.BackendIf, upBridge = "eth0", "eth0", "br0"
		if err := l.portOnBridge(l.LB, "eth0", "br0", "plb", cfg.UpQueues); err != nil {
			return nil, err
		}
		if err := l.LB.ipAll([][]string{
			{"addr", "add", "10.0.1.1/24", "dev", "eth0"}, {"addr", "add", "10.0.2.1/24", "dev", "eth0"},
			{"link", "set", "eth0", "up"}}); err != nil {
			return nil, err
		}
	}
	for i, cl := range l.Clients {
		if err := l.hostQueues(cl, upBridge, fmt.Sprintf("pc%d", i+1), l.ClientAddrs[i], "10.0.1.1", cfg.ClientQueues); err != nil {
			return nil, err
		}
	}
	for i, b := range l.Backends {
		if err := l.host(b, "br0", fmt.Sprintf("pb%d", i+1), l.BackendAddrs[i], "10.0.2.1"); err != nil {
			return nil, err
		}
	}
	if cfg.Router {
		if err := l.addRouter(c, p, upBridge); err != nil {
			return nil, err
		}
	}
	if cfg.IPv6 {
		if err := l.addIPv6(); err != nil {
			return nil, err
		}
	}
	if cfg.BackendLinkMTU > 0 && cfg.Topology == TwoArm {
		if _, err := l.LB.IP("link", "set", l.BackendIf, "mtu", fmt.Sprint(cfg.BackendLinkMTU)); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// addIPv6 gives every host its IPv6 address and default route (nodad: no
// duplicate address detection delay in a lab with no duplicates).
func (l *Lab) addIPv6() error {
	l.VIP6 = netip.MustParseAddr("2001:db8:100::1")
	if err := l.LB.ipAll([][]string{{"addr", "add", LBUp6.String() + "/64", "dev", l.UpstreamIf, "nodad"},
		{"addr", "add", LBDown6.String() + "/64", "dev", l.BackendIf, "nodad"}}); err != nil {
		return err
	}
	for i, cl := range l.Clients {
		a := netip.MustParseAddr(fmt.Sprintf("2001:db8:1::%x", 2+i))
		l.ClientAddrs6 = append(l.ClientAddrs6, a)
		if err := cl.ipAll([][]string{{"addr", "add", a.String() + "/64", "dev", "eth0", "nodad"},
			{"-6", "route", "add", "default", "via", LBUp6.String()}}); err != nil {
			return err
		}
	}
	for i, b := range l.Backends {
		a := netip.MustParseAddr(fmt.Sprintf("2001:db8:2::%x", 0x11+i))
		l.BackendAddrs6 = append(l.BackendAddrs6, a)
		if err := b.ipAll([][]string{{"addr", "add", a.String() + "/64", "dev", "eth0", "nodad"},
			{"-6", "route", "add", "default", "via", LBDown6.String()}}); err != nil {
			return err
		}
	}
	return nil
}

// host wires an end host: eth0 on a bridge port, a /24 address, a default
// route, and TX checksum offload off.
func (l *Lab) host(ns *NS, bridge, port string, addr netip.Addr, gw string) error {
	return l.hostQueues(ns, bridge, port, addr, gw, 0)
}

// hostQueues is host with that many veth queues (0: one).
func (l *Lab) hostQueues(ns *NS, bridge, port string, addr netip.Addr, gw string, queues int) error {
	if err := l.portOnBridge(ns, "eth0", bridge, port, queues); err != nil {
		return err
	}
	if err := ns.ipAll([][]string{{"addr", "add", addr.String() + "/24", "dev", "eth0"}, {"link", "set", "eth0", "up"},
		{"route", "add", "default", "via", gw}}); err != nil {
		return err
	}
	return TxChecksumOff(ns, "eth0")
}

// portOnBridge connects ns/ifname to a new port of a switch bridge; queues
// > 0 gives both veth ends that many RX and TX queues.
func (l *Lab) portOnBridge(ns *NS, ifname, bridge, port string, queues int) error {
	if err := VethQueues(ns, ifname, l.Switch, port, queues); err != nil {
		return err
	}
	return l.Switch.ipAll([][]string{{"link", "set", port, "master", bridge}, {"link", "set", port, "up"}})
}

// Veth creates a veth pair with one end in each namespace.
func Veth(a *NS, aName string, b *NS, bName string) error {
	return VethQueues(a, aName, b, bName, 0)
}

// VethQueues is Veth with n RX and TX queues on both ends (n <= 0: the
// kernel's default, one queue in use).
func VethQueues(a *NS, aName string, b *NS, bName string, n int) error {
	args := []string{"link", "add", aName, "netns", a.Name}
	q := func() []string {
		if n <= 0 {
			return nil
		}
		return []string{"numrxqueues", fmt.Sprint(n), "numtxqueues", fmt.Sprint(n)}
	}
	args = append(append(args, q()...), "type", "veth", "peer", "name", bName, "netns", b.Name)
	_, err := run("ip", append(args, q()...)...)
	return err
}

// TxChecksumOff makes the kernel put full checksums in the packets it sends.
// With offload on, veth hands over CHECKSUM_PARTIAL packets whose L4
// checksum field holds only the pseudo-header sum; AF_XDP sees those raw
// bytes and cannot know. Real NICs deliver complete checksums from the wire.
func TxChecksumOff(ns *NS, ifname string) error {
	return ns.Do(func() error { return netlink.DisableTxOffload(ifname) })
}

func (n *NS) ipAll(cmds [][]string) error {
	for _, c := range cmds {
		if _, err := n.IP(c...); err != nil {
			return err
		}
	}
	return nil
}

// namespaces makes a lab's namespaces under one prefix, keeping the first
// error so a builder checks once.
type namespaces struct {
	c      Cleaner
	prefix string
	err    error
}

func (n *namespaces) make(role string) *NS {
	if n.err != nil {
		return nil
	}
	ns, err := NewNS(n.c, n.prefix+"-"+role)
	n.err = err
	return ns
}

// makeBackends adds count backend namespaces, backend i at 10.0.2.(11+i).
func (l *Lab) makeBackends(ns *namespaces, count int) {
	for i := 0; i < count; i++ {
		l.Backends = append(l.Backends, ns.make(fmt.Sprintf("b%d", i+1)))
		l.BackendAddrs = append(l.BackendAddrs, netip.MustParseAddr(fmt.Sprintf("10.0.2.%d", 11+i)))
	}
}
