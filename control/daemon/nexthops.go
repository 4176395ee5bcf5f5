package daemon

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// resolver keeps the next hops of backends (on the backend interface) and
// of clients (on the upstream interface) from the kernel's routes and
// neighbour tables. Refresh talks to netlink; Backend and Client answer
// from the last refresh, so the apply path never waits for the kernel.
type resolver struct {
	log      *zap.Logger
	neigh    *netlink.Neighbours
	up, down netlink.Interface

	mu       sync.Mutex
	backends map[netip.Addr]Hop
	client   dataplane.ClientHops
	routes   map[netip.Addr]route
	asked    map[netip.Addr]time.Time // last Request per next hop
	problems map[netip.Addr]string    // logged, to log only changes
}

// route is a cached route lookup; routes change rarely, neighbours often.
type route struct {
	hop     netip.Addr
	ifindex int
	err     error
	at      time.Time
}

const (
	routeTTL      = 5 * time.Second
	requestPeriod = time.Second // re-request a missing or failed entry at most this often
)

func newResolver(log *zap.Logger, n *netlink.Neighbours, up, down netlink.Interface) *resolver {
	return &resolver{log: log.Named("nexthop"), neigh: n, up: up, down: down, backends: map[netip.Addr]Hop{},
		routes: map[netip.Addr]route{}, asked: map[netip.Addr]time.Time{}, problems: map[netip.Addr]string{}}
}

// Backend is a backend's next hop as last resolved.
func (r *resolver) Backend(a netip.Addr) Hop {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.backends[a]
}

// Client is the upstream side's next hops as last read.
func (r *resolver) Client() dataplane.ClientHops {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.client
}

// Refresh re-reads the neighbour tables for the backends addrs, asks the
// kernel to resolve (again) what is missing or failed, and reports whether
// any answer changed.
func (r *resolver) Refresh(addrs []netip.Addr, now time.Time) (changed bool, unresolved int) {
	entries, err := r.neigh.Entries(r.down.Index)
	if err != nil {
		r.log.Warn("read neighbours", zap.Error(err))
	}
	next := make(map[netip.Addr]Hop, len(addrs))
	for _, a := range addrs {
		h := r.resolve(a, entries, now)
		if h.MAC == (packet.MAC{}) {
			unresolved++
		}
		next[a] = h
		r.note(a, h.Problem)
	}
	client := r.clientHops()
	r.mu.Lock()
	defer r.mu.Unlock()
	changed = !maps.Equal(next, r.backends) || !reflect.DeepEqual(client, r.client)
	r.backends, r.client = next, client
	return changed, unresolved
}

func (r *resolver) resolve(a netip.Addr, entries map[netip.Addr]netlink.Entry, now time.Time) Hop {
	rt, ok := r.routes[a]
	if !ok || now.Sub(rt.at) > routeTTL {
		rt.hop, rt.ifindex, rt.err = netlink.NextHop(a)
		rt.at = now
		r.routes[a] = rt
	}
	if rt.err != nil {
		return Hop{Problem: rt.err.Error()}
	}
	if rt.ifindex != r.down.Index {
		return Hop{Problem: fmt.Sprintf("the route leaves by ifindex %d, not the backend interface %s", rt.ifindex, r.down.Name)}
	}
	e, have := entries[rt.hop]
	if e.Usable {
		return Hop{MAC: macOf(e.MAC)}
	}
	// Missing (never asked, or deleted since) or failed: ask again, but
	// not on every refresh.
	if now.Sub(r.asked[rt.hop]) >= requestPeriod {
		r.asked[rt.hop] = now
		if err := r.neigh.Request(r.down.Index, rt.hop); err != nil {
			return Hop{Problem: err.Error()}
		}
	}
	if have && e.Failed {
		return Hop{Problem: fmt.Sprintf("%s does not answer ARP/NDP", rt.hop)}
	}
	return Hop{}
}

// clientHops reads the upstream interface's resolved neighbours, on-link
// prefixes and default gateway.
func (r *resolver) clientHops() dataplane.ClientHops {
	var h dataplane.ClientHops
	table, err := r.neigh.Table(r.up.Index)
	if err != nil {
		r.log.Warn("read upstream neighbours", zap.Error(err))
	}
	h.Neighbours = make(map[netip.Addr]packet.MAC, len(table))
	for a, m := range table {
		h.Neighbours[a] = macOf(m)
	}
	h.OnLink, _ = netlink.Prefixes(r.up.Index)
	if gw, ok := netlink.DefaultGateway(r.up.Index, false); ok {
		h.Gateway = h.Neighbours[gw]
	}
	if gw, ok := netlink.DefaultGateway(r.up.Index, true); ok {
		h.Gateway6 = h.Neighbours[gw]
	}
	return h
}

// RequestClient has the kernel resolve the next hop towards a client (for a
// flow a worker wants to rebuild): the client itself when on-link, else
// the default gateway.
func (r *resolver) RequestClient(client netip.Addr) {
	hop := client
	if !r.onLink(client) {
		gw, ok := netlink.DefaultGateway(r.up.Index, client.Is6())
		if !ok {
			return
		}
		hop = gw
	}
	if err := r.neigh.Probe(r.up.Index, hop); err != nil {
		r.log.Debug("probe client next hop", zap.Stringer("hop", hop), zap.Error(err))
	}
}

func (r *resolver) onLink(a netip.Addr) bool {
	for _, p := range r.Client().OnLink {
		if p.Masked().Contains(a) {
			return true
		}
	}
	return false
}

// note logs a backend's next-hop problem when it appears or clears.
func (r *resolver) note(a netip.Addr, problem string) {
	if r.problems[a] == problem {
		return
	}
	if problem != "" {
		r.log.Warn("backend unreachable", zap.Stringer("backend", a), zap.String("reason", problem))
	} else {
		r.log.Info("backend reachable again", zap.Stringer("backend", a))
	}
	if problem == "" {
		delete(r.problems, a)
	} else {
		r.problems[a] = problem
	}
}
