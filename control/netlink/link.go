package netlink

import (
	"fmt"
	"net"
	"net/netip"

	vnl "github.com/vishvananda/netlink"
)

// Interface is what the daemon needs to know about a NIC.
type Interface struct {
	Name   string
	Index  int
	MAC    net.HardwareAddr
	MTU    int
	Queues int // RX queues
	// XDPProgID is the id of an XDP program already attached, 0 if none.
	XDPProgID uint32
}

// InterfaceByName looks up an interface in the current network namespace.
func InterfaceByName(name string) (Interface, error) {
	l, err := vnl.LinkByName(name)
	if err != nil {
		return Interface{}, fmt.Errorf("interface %q: %w", name, err)
	}
	a := l.Attrs()
	ifc := Interface{Name: a.Name, Index: a.Index, MAC: a.HardwareAddr, MTU: a.MTU, Queues: rxQueues(a.Name, a.NumRxQueues)}
	if a.Xdp != nil && a.Xdp.Attached {
		ifc.XDPProgID = a.Xdp.ProgId
	}
	if len(ifc.MAC) != 6 {
		return Interface{}, fmt.Errorf("interface %q has no Ethernet address", name)
	}
	return ifc, nil
}

// Addrs returns the IPv4 and IPv6 addresses of an interface.
func Addrs(ifindex int) ([]netip.Addr, error) {
	ps, err := Prefixes(ifindex)
	out := make([]netip.Addr, len(ps))
	for i, p := range ps {
		out[i] = p.Addr()
	}
	return out, err
}

// Prefixes returns the IPv4 and IPv6 addresses of an interface with their
// prefix lengths (10.0.1.1/24, 2001:db8:1::1/64): the on-link networks.
func Prefixes(ifindex int) ([]netip.Prefix, error) {
	l, err := vnl.LinkByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("interface %d: %w", ifindex, err)
	}
	list, err := vnl.AddrList(l, vnl.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	var out []netip.Prefix
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.IPNet == nil {
			continue
		}
		bits, _ := a.IPNet.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
	}
	return out, nil
}

// AllAddrs returns every IPv4 and IPv6 address of the host (this network
// namespace).
func AllAddrs() ([]netip.Addr, error) {
	list, err := vnl.AddrList(nil, vnl.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("host addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// DefaultGateway is the gateway of the default route of a family (IPv6:
// v6 true) that leaves by ifindex, if there is one. An IPv6 gateway is
// often link-local.
func DefaultGateway(ifindex int, v6 bool) (netip.Addr, bool) {
	family := vnl.FAMILY_V4
	if v6 {
		family = vnl.FAMILY_V6
	}
	routes, err := vnl.RouteListFiltered(family, &vnl.Route{LinkIndex: ifindex}, vnl.RT_FILTER_OIF)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if gw, ok := netip.AddrFromSlice(r.Gw); ok && gw.IsValid() && !gw.IsUnspecified() {
			return gw.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// DetachXDP removes an XDP program attached through netlink (ip link set
// xdp ...). A program attached through a bpf_link cannot be removed this
// way: the kernel answers EBUSY while the link's owner holds it.
func DetachXDP(ifindex int) error {
	l, err := vnl.LinkByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("interface %d: %w", ifindex, err)
	}
	if err := vnl.LinkSetXdpFd(l, -1); err != nil {
		return fmt.Errorf("detach xdp from %s: %w", l.Attrs().Name, err)
	}
	return nil
}
