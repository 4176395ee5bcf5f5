package netlink

import (
	"fmt"
	"net"

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
