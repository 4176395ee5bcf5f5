package testenv

import (
	"fmt"
	"net/netip"
)

// RoutedConfig sizes a RoutedLab.
type RoutedConfig struct {
	Backends int
	// HopMTU is the MTU of the link between the two routers on the client
	// path (0: 1500): a smaller hop than any host's own link, so TCP's MSS
	// cannot hide it and only ICMP fragmentation-needed can tell.
	HopMTU int
	// BackendLinkMTU is the MTU of the load balancer's backend interface
	// (0: 1500); the backends' own links keep 1500.
	BackendLinkMTU int
}

// NewRoutedLab builds the path-MTU lab:
//
//	client 10.0.1.2 -- r1 10.0.1.1 | 10.0.3.1 -(hop)- 10.0.3.2 r2 10.0.4.1 -- 10.0.4.2 up0 lb
//	lb down0 10.0.2.1 -- br0 -- backends 10.0.2.11.. (default via the lb), r2 10.0.2.254
//
// r2 routes the VIP to the load balancer and is the DSR backends' way back.
// The returned Lab's Router is r2; R1 is the client's router.
func NewRoutedLab(c Cleaner, cfg RoutedConfig) (*Lab, *NS, error) {
	p := UniquePrefix()
	l := &Lab{VIP: netip.MustParseAddr("10.0.100.1"), UpstreamIf: "up0", BackendIf: "down0",
		ClientAddr: netip.MustParseAddr("10.0.1.2")}
	l.ClientAddrs = []netip.Addr{l.ClientAddr}
	ns := &namespaces{c: c, prefix: p}
	mk := ns.make
	l.Client, l.LB, l.Switch, l.Router = mk("c1"), mk("lb"), mk("sw"), mk("r2")
	r1 := mk("r1")
	l.makeBackends(ns, cfg.Backends)
	if err := ns.err; err != nil {
		return nil, nil, err
	}
	l.Clients = []*NS{l.Client}
	steps := []func() error{
		func() error {
			return l.Switch.ipAll([][]string{{"link", "add", "br0", "type", "bridge"}, {"link", "set", "br0", "up"}})
		},
		func() error { return l.clientBehind(r1) },
		func() error { return Veth(r1, "h0", l.Router, "h0") },
		func() error { return Veth(l.Router, "l0", l.LB, "up0") },
		func() error { return l.portOnBridge(l.LB, "down0", "br0", "plb", 0) },
		func() error { return l.portOnBridge(l.Router, "b0", "br0", "prtb", 0) },
		func() error {
			return r1.ipAll([][]string{{"addr", "add", "10.0.1.1/24", "dev", "c0"}, {"addr", "add", "10.0.3.1/24", "dev", "h0"},
				{"link", "set", "c0", "up"}, {"link", "set", "h0", "up"}, {"route", "add", "default", "via", "10.0.3.2"}})
		},
		func() error {
			return l.Router.ipAll([][]string{{"addr", "add", "10.0.3.2/24", "dev", "h0"}, {"addr", "add", "10.0.4.1/24", "dev", "l0"},
				{"addr", "add", RouterAddr + "/24", "dev", "b0"}, {"link", "set", "h0", "up"}, {"link", "set", "l0", "up"},
				{"link", "set", "b0", "up"}, {"route", "add", "10.0.1.0/24", "via", "10.0.3.1"},
				{"route", "add", l.VIP.String() + "/32", "via", "10.0.4.2"}})
		},
		func() error {
			return l.LB.ipAll([][]string{{"addr", "add", "10.0.4.2/24", "dev", "up0"}, {"addr", "add", "10.0.2.1/24", "dev", "down0"},
				{"link", "set", "up0", "up"}, {"link", "set", "down0", "up"}, {"route", "add", "default", "via", "10.0.4.1"}})
		},
	}
	if cfg.HopMTU > 0 {
		mtu := fmt.Sprint(cfg.HopMTU)
		steps = append(steps, func() error { _, err := r1.IP("link", "set", "h0", "mtu", mtu); return err },
			func() error { _, err := l.Router.IP("link", "set", "h0", "mtu", mtu); return err })
	}
	if cfg.BackendLinkMTU > 0 {
		steps = append(steps, func() error {
			_, err := l.LB.IP("link", "set", "down0", "mtu", fmt.Sprint(cfg.BackendLinkMTU))
			return err
		})
	}
	for _, ns := range []*NS{r1, l.Router} {
		steps = append(steps, func() error { return forwarding(ns) })
	}
	for i, b := range l.Backends {
		steps = append(steps, func() error {
			return l.host(b, "br0", fmt.Sprintf("pb%d", i+1), l.BackendAddrs[i], "10.0.2.1")
		})
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, nil, err
		}
	}
	return l, r1, nil
}

// clientBehind links the client's eth0 (10.0.1.2/24) to router r's c0,
// its default gateway at 10.0.1.1.
func (l *Lab) clientBehind(r *NS) error {
	if err := Veth(l.Client, "eth0", r, "c0"); err != nil {
		return err
	}
	if err := l.Client.ipAll([][]string{{"addr", "add", "10.0.1.2/24", "dev", "eth0"}, {"link", "set", "eth0", "up"},
		{"route", "add", "default", "via", "10.0.1.1"}}); err != nil {
		return err
	}
	return TxChecksumOff(l.Client, "eth0")
}
