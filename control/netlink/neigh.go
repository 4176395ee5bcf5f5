package netlink

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	vnl "github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// NextHop returns the address whose MAC a packet to dst needs (dst itself
// when on-link, else the gateway) and the interface the route leaves by.
func NextHop(dst netip.Addr) (netip.Addr, int, error) {
	routes, err := vnl.RouteGet(dst.AsSlice())
	if err != nil || len(routes) == 0 {
		return netip.Addr{}, 0, fmt.Errorf("route to %s: %w", dst, errors.Join(err, errNoRoute(len(routes))))
	}
	r := routes[0]
	if gw, ok := netip.AddrFromSlice(r.Gw); ok && gw.IsValid() && !gw.IsUnspecified() {
		return gw.Unmap(), r.LinkIndex, nil
	}
	return dst, r.LinkIndex, nil
}

func errNoRoute(n int) error {
	if n == 0 {
		return errors.New("no route")
	}
	return nil
}

const usable = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT | unix.NUD_NOARP

// Neighbours resolves next-hop MACs. For an address it needs it asks the
// kernel for a managed neighbour entry (Linux 5.16+), which the kernel
// resolves and keeps fresh by itself, with no traffic from us; an entry
// that someone deleted, or that failed, is asked for again.
type Neighbours struct {
	log     *zap.Logger
	mu      sync.Mutex
	managed map[neighKey]bool
}

type neighKey struct {
	ifindex int
	ip      netip.Addr
}

// NewNeighbours makes a resolver.
func NewNeighbours(log *zap.Logger) *Neighbours {
	return &Neighbours{log: log.Named("neigh"), managed: map[neighKey]bool{}}
}

// Entry is a neighbour entry: its MAC, if any, and whether it can be used.
type Entry struct {
	MAC    net.HardwareAddr
	Usable bool // reachable, stale, delay, probe, permanent or noarp
	Failed bool // resolution failed
}

// Entries returns the IPv4 (ARP) and IPv6 (NDP) neighbour entries of
// ifindex, from a netlink dump of each.
func (n *Neighbours) Entries(ifindex int) (map[netip.Addr]Entry, error) {
	list, err := vnl.NeighList(ifindex, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("list neighbours on ifindex %d: %w", ifindex, err)
	}
	list6, err := vnl.NeighList(ifindex, unix.AF_INET6)
	if err != nil {
		return nil, fmt.Errorf("list IPv6 neighbours on ifindex %d: %w", ifindex, err)
	}
	list = append(list, list6...)
	t := make(map[netip.Addr]Entry, len(list))
	for _, e := range list {
		a, ok := netip.AddrFromSlice(e.IP)
		if !ok {
			continue
		}
		ent := Entry{Failed: e.State&unix.NUD_FAILED != 0}
		if e.State&usable != 0 && len(e.HardwareAddr) == 6 {
			ent.MAC, ent.Usable = e.HardwareAddr, true
		}
		t[a.Unmap()] = ent
	}
	return t, nil
}

// Table returns the usable (resolved) neighbour entries of ifindex.
func (n *Neighbours) Table(ifindex int) (map[netip.Addr]net.HardwareAddr, error) {
	es, err := n.Entries(ifindex)
	if err != nil {
		return nil, err
	}
	t := make(map[netip.Addr]net.HardwareAddr, len(es))
	for a, e := range es {
		if e.Usable {
			t[a] = e.MAC
		}
	}
	return t, nil
}

// Request asks the kernel to resolve ip on ifindex and keep it resolved: it
// creates a managed entry, or replaces one that is missing or failed. The
// caller decides when (it sees the table); Close removes what was created.
func (n *Neighbours) Request(ifindex int, ip netip.Addr) error {
	k := neighKey{ifindex, ip}
	n.mu.Lock()
	defer n.mu.Unlock()
	err := vnl.NeighSet(&vnl.Neigh{LinkIndex: ifindex, Family: family(ip), IP: ip.AsSlice(),
		Flags: vnl.NTF_EXT_LEARNED, FlagsExt: vnl.NTF_EXT_MANAGED})
	if err != nil {
		return fmt.Errorf("request managed neighbour %s on ifindex %d: %w", ip, ifindex, err)
	}
	if !n.managed[k] {
		n.log.Info("resolving neighbour", zap.Stringer("ip", ip), zap.Int("ifindex", ifindex))
	}
	n.managed[k] = true
	return nil
}

// Probe asks the kernel to resolve ip once (NTF_USE), as if it were about
// to send to it, without keeping the entry: for clients' next hops.
func (n *Neighbours) Probe(ifindex int, ip netip.Addr) error {
	err := vnl.NeighSet(&vnl.Neigh{LinkIndex: ifindex, Family: family(ip), IP: ip.AsSlice(), Flags: unix.NTF_USE})
	if err != nil {
		return fmt.Errorf("probe neighbour %s on ifindex %d: %w", ip, ifindex, err)
	}
	return nil
}

// Close removes the managed entries this resolver created.
func (n *Neighbours) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for k := range n.managed {
		err := vnl.NeighDel(&vnl.Neigh{LinkIndex: k.ifindex, Family: family(k.ip), IP: k.ip.AsSlice()})
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove managed neighbour %s: %w", k.ip, err))
		}
		delete(n.managed, k)
	}
	return errors.Join(errs...)
}

// family is the address family of a neighbour entry for ip: ARP or NDP.
func family(ip netip.Addr) int {
	if ip.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}
