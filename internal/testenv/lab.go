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

// Lab is a client, a load balancer and N backends in namespaces.
//
//	client 10.0.1.2/24 (default via 10.0.1.1)
//	lb     10.0.1.1/24 and 10.0.2.1/24
//	backend i 10.0.2.(11+i)/24 (default via 10.0.2.1)
//	VIP    10.0.100.1 (routed to the lb, configured nowhere)
type Lab struct {
	Client   *NS
	LB       *NS
	Switch   *NS
	Backends []*NS
	// Interfaces inside LB.
	UpstreamIf, BackendIf string
	VIP                   netip.Addr
	BackendAddrs          []netip.Addr
	ClientAddr            netip.Addr
}

// NewLab builds the topology; everything is removed on cleanup.
func NewLab(c Cleaner, topo Topology, backends int) (*Lab, error) {
	p := UniquePrefix()
	l := &Lab{VIP: netip.MustParseAddr("10.0.100.1"), ClientAddr: netip.MustParseAddr("10.0.1.2")}
	var err error
	mk := func(role string) *NS {
		if err != nil {
			return nil
		}
		var ns *NS
		ns, err = NewNS(c, p+"-"+role)
		return ns
	}
	l.Client, l.LB, l.Switch = mk("cl"), mk("lb"), mk("sw")
	for i := 0; i < backends; i++ {
		l.Backends = append(l.Backends, mk(fmt.Sprintf("b%d", i+1)))
		l.BackendAddrs = append(l.BackendAddrs, netip.MustParseAddr(fmt.Sprintf("10.0.2.%d", 11+i)))
	}
	if err != nil {
		return nil, err
	}
	steps := [][]string{{"link", "add", "br0", "type", "bridge"}, {"link", "set", "br0", "up"}}
	if err := l.Switch.ipAll(steps); err != nil {
		return nil, err
	}
	if topo == TwoArm {
		l.UpstreamIf, l.BackendIf = "up0", "down0"
		if err := Veth(l.Client, "eth0", l.LB, "up0"); err != nil {
			return nil, err
		}
		if err := l.portOnBridge(l.LB, "down0", "plb"); err != nil {
			return nil, err
		}
		if err := l.LB.ipAll([][]string{
			{"addr", "add", "10.0.1.1/24", "dev", "up0"}, {"addr", "add", "10.0.2.1/24", "dev", "down0"},
			{"link", "set", "up0", "up"}, {"link", "set", "down0", "up"}}); err != nil {
			return nil, err
		}
	} else {
		l.UpstreamIf, l.BackendIf = "eth0", "eth0"
		if err := l.portOnBridge(l.Client, "eth0", "pcl"); err != nil {
			return nil, err
		}
		if err := l.portOnBridge(l.LB, "eth0", "plb"); err != nil {
			return nil, err
		}
		if err := l.LB.ipAll([][]string{
			{"addr", "add", "10.0.1.1/24", "dev", "eth0"}, {"addr", "add", "10.0.2.1/24", "dev", "eth0"},
			{"link", "set", "eth0", "up"}}); err != nil {
			return nil, err
		}
	}
	if err := l.Client.ipAll([][]string{{"addr", "add", "10.0.1.2/24", "dev", "eth0"}, {"link", "set", "eth0", "up"},
		{"route", "add", "default", "via", "10.0.1.1"}}); err != nil {
		return nil, err
	}
	if err := TxChecksumOff(l.Client, "eth0"); err != nil {
		return nil, err
	}
	for i, b := range l.Backends {
		if err := l.portOnBridge(b, "eth0", fmt.Sprintf("pb%d", i+1)); err != nil {
			return nil, err
		}
		if err := b.ipAll([][]string{{"addr", "add", l.BackendAddrs[i].String() + "/24", "dev", "eth0"},
			{"link", "set", "eth0", "up"}, {"route", "add", "default", "via", "10.0.2.1"}}); err != nil {
			return nil, err
		}
		if err := TxChecksumOff(b, "eth0"); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// portOnBridge connects ns/ifname to a new port of the switch bridge.
func (l *Lab) portOnBridge(ns *NS, ifname, port string) error {
	if err := Veth(ns, ifname, l.Switch, port); err != nil {
		return err
	}
	return l.Switch.ipAll([][]string{{"link", "set", port, "master", "br0"}, {"link", "set", port, "up"}})
}

// Veth creates a veth pair with one end in each namespace.
func Veth(a *NS, aName string, b *NS, bName string) error {
	_, err := run("ip", "link", "add", aName, "netns", a.Name, "type", "veth", "peer", "name", bName, "netns", b.Name)
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
