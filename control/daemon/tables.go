package daemon

import (
	"net/netip"
	"slices"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/control/health"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// inputs is everything the tables are computed from.
type inputs struct {
	state    *config.State
	healthy  func(backendID uint32) bool
	hop      func(netip.Addr) Hop
	client   dataplane.ClientHops
	links    links
	fwSlots  map[uint32]uint32 // rule id -> map slot
	dosSlots map[uint32]uint32 // policy id -> map slot
}

// tables is what the dataplane and the XDP program get.
type tables struct {
	dataplane  dataplane.Config
	services   map[bpf.Endpoint]uint32 // steered VIP:port/proto -> service id
	backends   map[bpf.Endpoint]uint32 // steered replies' source -> service id (not DSR: no replies come)
	vips       []netip.Addr            // echo requests and ICMP errors to them are steered
	hosts      map[netip.Addr][6]byte  // backend address -> next-hop MAC (filters skip them)
	firewall   []bpf.FirewallRule      //
	dos        []bpf.DosPolicy         //
	probes     []health.Target         //
	announce   []netip.Addr            // VIPs to announce over BGP, sorted
	unresolved int                     // backends without a next hop
}

// buildTables is the whole translation from desired state, health and next
// hops to tables, with no side effect: a backend takes new flows only when
// it is not drained, healthy and has a next hop; otherwise its Maglev
// weight is 0 and its tracked flows continue.
func buildTables(in inputs) tables {
	n := 0
	for _, s := range in.state.Services {
		n += len(s.Backends)
	}
	l := in.links
	t := tables{
		dataplane: dataplane.Config{UpstreamMAC: l.upMAC, BackendMAC: l.downMAC, UpstreamMTU: l.upMTU,
			BackendMTU: l.downMTU, BackendAddr: l.downAddr, BackendAddr6: l.downAddr6, MSSClamp: l.mssClamp, ClientHops: in.client,
			Services: make([]dataplane.Service, 0, len(in.state.Services))},
		services: make(map[bpf.Endpoint]uint32, len(in.state.Services)),
		backends: make(map[bpf.Endpoint]uint32, n),
		hosts:    make(map[netip.Addr][6]byte, n),
	}
	vips := map[netip.Addr]bool{}
	for _, s := range in.state.Services {
		svc := dataplane.Service{ID: s.ID, VIP: s.VIP, Port: s.Port, Proto: s.Proto, Mode: s.Mode}
		t.services[bpf.Endpoint{Addr: s.VIP, Port: s.Port, Proto: s.Proto}] = s.ID
		if !vips[s.VIP] {
			vips[s.VIP] = true
			t.vips = append(t.vips, s.VIP)
		}
		for _, b := range s.Backends {
			be := dataplane.Backend{ID: b.ID, Addr: b.Addr, Port: b.Port, Weight: b.Weight, MAC: in.hop(b.Addr).MAC}
			if be.MAC == (packet.MAC{}) {
				t.unresolved++
			} else {
				t.hosts[b.Addr] = be.MAC
			}
			if b.Drained || !in.healthy(b.ID) || be.MAC == (packet.MAC{}) {
				be.Weight = 0
			}
			svc.Backends = append(svc.Backends, be)
			if !s.Mode.DSR() {
				t.backends[bpf.Endpoint{Addr: b.Addr, Port: b.Port, Proto: s.Proto}] = s.ID
			}
		}
		t.dataplane.Services = append(t.dataplane.Services, svc)
		t.probes = append(t.probes, probesOf(s)...)
	}
	t.announce = announced(t.dataplane.Services)
	for _, r := range in.state.FirewallRules {
		t.firewall = append(t.firewall, bpf.FirewallRule{Slot: in.fwSlots[r.ID], Prefix: r.Network, Proto: r.Proto,
			SrcFrom: r.SrcPorts.From, SrcTo: r.SrcPorts.To, DstFrom: r.DstPorts.From, DstTo: r.DstPorts.To})
	}
	for _, p := range in.state.DosPolicies {
		mask, value := p.TCPFlags()
		t.dos = append(t.dos, bpf.DosPolicy{Slot: in.dosSlots[p.ID], Proto: p.Proto, FlagsMask: mask, FlagsValue: value,
			LimitPPS: p.LimitPPS, Block: time.Duration(p.BlockSeconds) * time.Second})
	}
	return t
}

func probesOf(s config.ServiceState) []health.Target {
	if s.Health == nil {
		return nil
	}
	chk := s.Health.Check()
	var out []health.Target
	for _, b := range s.Backends {
		port := b.Port
		if chk.Port != 0 {
			port = chk.Port
		}
		out = append(out, health.Target{ID: b.ID, Addr: netip.AddrPortFrom(b.Addr, port), Check: chk})
	}
	return out
}

// announced is the BGP decision: a VIP is announced while at least one of
// its services has a backend that takes new flows (weight > 0 here means
// not drained, healthy and with a next hop). One serving port is enough:
// the /32 carries every port of the VIP, and withdrawing it would take the
// serving port's traffic away from this instance too. IPv6 VIPs are not
// announced: the speaker carries IPv4 unicast only (docs/scaleout.md).
func announced(svcs []dataplane.Service) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, s := range svcs {
		if s.VIP.Is4() && !seen[s.VIP] && slices.ContainsFunc(s.Backends, func(b dataplane.Backend) bool { return b.Weight > 0 }) {
			seen[s.VIP] = true
			out = append(out, s.VIP)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
