package dataplane

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/maglev"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// Config is the whole desired state the dataplane needs.
type Config struct {
	UpstreamMAC packet.MAC // source MAC of replies sent to clients
	BackendMAC  packet.MAC // source MAC of requests sent to backends
	// UpstreamMTU and BackendMTU are the links' MTUs (0: 1500): larger
	// packets are answered with ICMP fragmentation-needed, and forwarded
	// SYNs' MSS is clamped so peers do not send more than a link takes.
	UpstreamMTU, BackendMTU int
	// BackendAddr and BackendAddr6 are the load balancer's addresses on the
	// backend side: the sources of the ICMP errors it sends to backends.
	BackendAddr, BackendAddr6 netip.Addr
	// MSSClamp lowers the MSS of every forwarded SYN and SYN-ACK (0: off).
	MSSClamp uint16
	Services []Service
	// ClientHops tell a flow rebuilt from a backend's packet (after a
	// restart) which MAC leads to its client.
	ClientHops ClientHops
}

// Service is a VIP:port/protocol and its backends.
type Service struct {
	ID       uint32
	VIP      netip.Addr
	Port     uint16
	Proto    ipproto.Proto
	Mode     fwdmode.Mode
	Backends []Backend
}

// Backend is one real server of a service.
type Backend struct {
	ID     uint32 // unique across services, stable while the backend exists
	Addr   netip.Addr
	Port   uint16
	Weight uint32     // 0: no new flows (drained, unhealthy, no next hop); tracked flows continue
	MAC    packet.MAC // next hop; zero while unresolved
}

// ClientHops is the upstream side's next-hop knowledge: the resolved
// neighbours of the upstream interface, its on-link prefixes, and the MACs
// of its default gateways, IPv4 and IPv6 (zero if none).
type ClientHops struct {
	Neighbours        map[netip.Addr]packet.MAC
	OnLink            []netip.Prefix
	Gateway, Gateway6 packet.MAC
}

// svcKey is an IPv6 address, port and protocol: a service or a backend
// endpoint.
type svcKey struct {
	addr  packet.Addr
	port  uint16
	proto ipproto.Proto
}

// epIndex finds what an endpoint (address, port, protocol) names. IPv4
// keys are packed into one word: a Go map with an integer key skips
// hashing a struct on every packet (a 20-byte struct key cost an IPv4
// packet ~50 ns). IPv6 keys are structs.
type epIndex[T any] struct {
	v4 map[uint64]T
	v6 map[svcKey]T
}

func newEPIndex[T any](n int) epIndex[T] {
	return epIndex[T]{v4: make(map[uint64]T, n), v6: map[svcKey]T{}}
}

func pack4(a packet.Addr, port uint16, proto ipproto.Proto) uint64 {
	return uint64(a.Low())<<32 | uint64(port)<<8 | uint64(proto)
}

func (x epIndex[T]) get(a packet.Addr, port uint16, proto ipproto.Proto) (T, bool) {
	if a.Is4() {
		v, ok := x.v4[pack4(a, port, proto)]
		return v, ok
	}
	v, ok := x.v6[svcKey{a, port, proto}]
	return v, ok
}

func (x epIndex[T]) put(a packet.Addr, port uint16, proto ipproto.Proto, v T) {
	if a.Is4() {
		x.v4[pack4(a, port, proto)] = v
		return
	}
	x.v6[svcKey{a, port, proto}] = v
}

func (x epIndex[T]) len() int { return len(x.v4) + len(x.v6) }

// all is every value, IPv4 first.
func (x epIndex[T]) all() []T {
	out := make([]T, 0, x.len())
	for _, v := range x.v4 {
		out = append(out, v)
	}
	for _, v := range x.v6 {
		out = append(out, v)
	}
	return out
}

// table is the immutable, compiled form of a Config.
type table struct {
	upMAC, downMAC packet.MAC
	upMTU, downMTU int
	downAddr       packet.Addr // IPv4
	downAddr6      packet.Addr
	mssClamp       uint16
	services       epIndex[*service]
	backends       backendIndex
	endpoints      epIndex[*endpoint]   // backend ip:port/proto -> what shares it
	vips           map[packet.Addr]bool // echo requests to them are answered
	hops           clientHops
}

type service struct {
	id       uint32
	vip      packet.Addr
	port     uint16
	proto    ipproto.Proto
	mode     fwdmode.Mode
	backends []*backend // ordered by address and port, as the Maglev table
	maglev   *maglev.Table
	input    []maglev.Backend // what the table was built from, to reuse it
}

type backend struct {
	id      uint32
	service uint32
	addr    packet.Addr
	port    uint16
	mac     packet.MAC
	stats   *BackendStats
}

// endpoint is a backend ip:port/proto, which several services may share:
// its next-hop MAC (replies must come from it in one-arm mode) and the
// services a lost flow's reply may belong to.
type endpoint struct {
	mac      packet.MAC
	services []*service
}

// Compiled is a checked configuration, ready for Engine.Install.
type Compiled struct {
	t      *table
	fpOnce sync.Once
	fps    map[uint32]uint64
}

// Fingerprints are the services' Maglev table fingerprints by service id
// (maglev.Table.Fingerprint): instances that agree on every flow's backend
// show the same. Computed on first use, for the API, never per packet.
func (c *Compiled) Fingerprints() map[uint32]uint64 {
	c.fpOnce.Do(func() {
		c.fps = make(map[uint32]uint64, c.t.services.len())
		for _, s := range c.t.services.all() {
			c.fps[s.id] = s.maglev.Fingerprint(s.input)
		}
	})
	return c.fps
}

// compile builds a table. Services whose Maglev input is unchanged in prev
// keep their Maglev table: a change rebuilds only the services it touches.
func compile(c Config, prev *table, stats func(id uint32) *BackendStats) (*table, error) {
	n := 0
	for _, s := range c.Services {
		n += len(s.Backends)
	}
	t := &table{upMAC: c.UpstreamMAC, downMAC: c.BackendMAC, upMTU: mtuOr1500(c.UpstreamMTU), downMTU: mtuOr1500(c.BackendMTU),
		mssClamp: c.MSSClamp, services: newEPIndex[*service](len(c.Services)),
		endpoints: newEPIndex[*endpoint](n), vips: map[packet.Addr]bool{}}
	if c.BackendAddr.Is4() {
		t.downAddr = packet.AddrFrom(c.BackendAddr)
	}
	if c.BackendAddr6.Is6() {
		t.downAddr6 = packet.AddrFrom(c.BackendAddr6)
	}
	t.hops = compileHops(c.ClientHops)
	var prevByID map[uint32]*service
	if prev != nil {
		prevByID = make(map[uint32]*service, prev.services.len())
		for _, s := range prev.services.all() {
			prevByID[s.id] = s
		}
	}
	byID := make(map[uint32]*backend, n)
	for _, s := range c.Services {
		svc, err := t.addService(s, byID, stats)
		if err != nil {
			return nil, err
		}
		if p := prevByID[s.ID]; p != nil && slices.Equal(p.input, svc.input) {
			svc.maglev = p.maglev
		} else {
			svc.maglev = maglev.Build(svc.input, maglev.SizeFor(len(svc.input)))
		}
	}
	t.backends = newBackendIndex(slices.Collect(maps.Values(byID)))
	return t, nil
}

// addService adds s, and its backends to byID.
func (t *table) addService(s Service, byID map[uint32]*backend, stats func(id uint32) *BackendStats) (*service, error) {
	if !s.VIP.IsValid() || s.VIP.Is4In6() {
		return nil, fmt.Errorf("service %d: VIP %s is not an IPv4 or IPv6 address", s.ID, s.VIP)
	}
	if s.VIP.Is6() && s.Mode == fwdmode.DSRIPIP {
		return nil, fmt.Errorf("service %d: %s is IPv4 only", s.ID, s.Mode)
	}
	if !s.Proto.IsL4() {
		return nil, fmt.Errorf("service %d: protocol %s is not tcp or udp", s.ID, s.Proto)
	}
	if len(s.Backends) > maglev.MaxBackends {
		return nil, fmt.Errorf("service %d: %d backends, a Maglev table holds %d", s.ID, len(s.Backends), maglev.MaxBackends)
	}
	vip := packet.AddrFrom(s.VIP)
	if _, dup := t.services.get(vip, s.Port, s.Proto); dup {
		return nil, fmt.Errorf("service %s defined twice", netip.AddrPortFrom(s.VIP, s.Port))
	}
	svc := &service{id: s.ID, vip: vip, port: s.Port, proto: s.Proto, mode: s.Mode}
	t.vips[svc.vip] = true
	// Ordered by address and port, never by id: instances given the same
	// backends in any order build the same table.
	bs := slices.Clone(s.Backends)
	slices.SortFunc(bs, func(a, b Backend) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	for _, b := range bs {
		if b.Addr.Is4() != s.VIP.Is4() || b.Addr.Is4In6() {
			return nil, fmt.Errorf("backend %d: %s is not of VIP %s's address family", b.ID, b.Addr, s.VIP)
		}
		if _, dup := byID[b.ID]; dup {
			return nil, fmt.Errorf("backend id %d used twice", b.ID)
		}
		be := &backend{id: b.ID, service: s.ID, addr: packet.AddrFrom(b.Addr), port: b.Port, mac: b.MAC, stats: stats(b.ID)}
		byID[b.ID] = be
		svc.backends = append(svc.backends, be)
		svc.input = append(svc.input, maglev.Backend{Key: netip.AddrPortFrom(b.Addr, b.Port).String(), Weight: b.Weight})
		ep, _ := t.endpoints.get(be.addr, be.port, s.Proto)
		if ep == nil {
			ep = &endpoint{mac: b.MAC}
			t.endpoints.put(be.addr, be.port, s.Proto, ep)
		}
		ep.services = append(ep.services, svc)
	}
	t.services.put(vip, s.Port, s.Proto, svc)
	return svc, nil
}

// clientHops is ClientHops compiled for lookups from a worker.
type clientHops struct {
	neigh             map[packet.Addr]packet.MAC
	onLink            []netip.Prefix
	gateway, gateway6 packet.MAC
}

func compileHops(h ClientHops) clientHops {
	out := clientHops{neigh: make(map[packet.Addr]packet.MAC, len(h.Neighbours)), gateway: h.Gateway, gateway6: h.Gateway6,
		onLink: slices.Clone(h.OnLink)}
	for a, m := range h.Neighbours {
		out.neigh[packet.AddrFrom(a)] = m
	}
	return out
}

func mtuOr1500(m int) int {
	if m <= 0 {
		return 1500
	}
	return m
}

// mac is the next hop towards a client: its own MAC when it is on-link
// and resolved, the gateway's when it is not on-link; false when unknown.
func (h *clientHops) mac(a packet.Addr) (packet.MAC, bool) {
	if m, ok := h.neigh[a]; ok {
		return m, true
	}
	ip := a.IP()
	for _, p := range h.onLink {
		if p.Contains(ip) {
			return packet.MAC{}, false
		}
	}
	gw := h.gateway
	if !a.Is4() {
		gw = h.gateway6
	}
	return gw, gw != packet.MAC{}
}

// Equal reports whether two configurations compile to the same table, so a
// caller can skip a compile when nothing changed.
func (c *Config) Equal(o *Config) bool {
	return c.UpstreamMAC == o.UpstreamMAC && c.BackendMAC == o.BackendMAC && c.UpstreamMTU == o.UpstreamMTU &&
		c.BackendMTU == o.BackendMTU && c.BackendAddr == o.BackendAddr && c.MSSClamp == o.MSSClamp &&
		c.ClientHops.Gateway == o.ClientHops.Gateway && c.ClientHops.Gateway6 == o.ClientHops.Gateway6 &&
		c.BackendAddr6 == o.BackendAddr6 && slices.Equal(c.ClientHops.OnLink, o.ClientHops.OnLink) &&
		maps.Equal(c.ClientHops.Neighbours, o.ClientHops.Neighbours) &&
		slices.EqualFunc(c.Services, o.Services, func(a, b Service) bool {
			return a.ID == b.ID && a.VIP == b.VIP && a.Port == b.Port && a.Proto == b.Proto && a.Mode == b.Mode &&
				slices.Equal(a.Backends, b.Backends)
		})
}

// MovedShares is, for every service of c that prev has too (by id), the
// share of its new-flow hash space whose backend differs between them
// (maglev.Moved): what a change moves.
func (c *Compiled) MovedShares(prev *Compiled) map[uint32]float64 {
	out := map[uint32]float64{}
	if prev == nil {
		return out
	}
	was := map[uint32]*service{}
	for _, s := range prev.t.services.all() {
		was[s.id] = s
	}
	for _, s := range c.t.services.all() {
		if a := was[s.id]; a != nil {
			out[s.id] = maglev.Moved(a.maglev, a.input, s.maglev, s.input)
		}
	}
	return out
}
