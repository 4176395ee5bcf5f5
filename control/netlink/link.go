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
	ifc := Interface{Name: a.Name, Index: a.Index, MAC: a.HardwareAddr, Queues: rxQueues(a.Name, a.NumRxQueues)}
	if a.Xdp != nil && a.Xdp.Attached {
		ifc.XDPProgID = a.Xdp.ProgId
	}
	if len(ifc.MAC) != 6 {
		return Interface{}, fmt.Errorf("interface %q has no Ethernet address", name)
	}
	return ifc, nil
}

// Addrs returns the IPv4 addresses of an interface.
func Addrs(ifindex int) ([]netip.Addr, error) {
	l, err := vnl.LinkByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("interface %d: %w", ifindex, err)
	}
	list, err := vnl.AddrList(l, vnl.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	var out []netip.Addr
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
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
