package netlink

import (
	"fmt"
	"net"
	"path/filepath"

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

// rxQueues counts the RX queues in use. Netlink's IFLA_NUM_RX_QUEUES is how
// many were allocated (veth allocates one per possible CPU but uses one);
// AF_XDP only binds to queues below the real count, which sysfs lists.
func rxQueues(name string, allocated int) int {
	m, err := filepath.Glob(filepath.Join("/sys/class/net", name, "queues", "rx-*"))
	if err != nil || len(m) == 0 {
		return max(allocated, 1)
	}
	return len(m)
}
