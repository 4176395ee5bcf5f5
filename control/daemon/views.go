package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// Services lists the desired state with live counters. It reads the last
// installed plan and never waits for an apply in progress.
func (c *core) Services() []api.Service {
	p := c.current()
	lv := c.live()
	out := make([]api.Service, 0, len(p.state.Services))
	for _, s := range p.state.Services {
		out = append(out, c.serviceView(s, p, lv))
	}
	return out
}

// liveState is what the views read besides the plan, gathered once per
// listing: active flows per backend.
type liveState struct {
	active map[uint32]uint64
}

func (c *core) live() liveState {
	return liveState{active: c.eng.Conntrack().ActiveByBackend()}
}

func (c *core) serviceView(s config.ServiceState, p *plan, lv liveState) api.Service {
	v := api.Service{ID: s.ID, VIP: netip.AddrPortFrom(s.VIP, s.Port).String(), Port: s.Port, Proto: s.Proto.String(),
		Mode: s.Mode.String(), Health: s.Health, Backends: []api.Backend{}}
	if p.compiled != nil {
		if fp, ok := p.compiled.Fingerprints()[s.ID]; ok {
			v.Fingerprint = fmt.Sprintf("%016x", fp)
		}
	}
	for _, b := range s.Backends {
		bv := c.backendView(s.ID, b, p, lv)
		v.Backends = append(v.Backends, bv)
		v.Packets += bv.Packets
		v.Bytes += bv.Bytes
		v.ActiveConns += bv.ActiveConns
	}
	return v
}

// backendView says whether the backend takes new flows and, if not, why:
// drained, unhealthy, or without a next hop.
func (c *core) backendView(serviceID uint32, b config.BackendState, p *plan, lv liveState) api.Backend {
	v := api.Backend{ID: b.ID, ServiceID: serviceID, Address: netip.AddrPortFrom(b.Addr, b.Port).String(),
		Weight: b.Weight, Status: "active", ActiveConns: lv.active[b.ID], Health: "unchecked"}
	if b.Drained {
		v.Status = "drained"
	}
	if st, ok := c.probes.Status(b.ID); ok {
		v.Health, v.HealthError = "healthy", st.LastError
		if !st.Healthy {
			v.Health = "unhealthy"
		}
	}
	v.Packets, v.Bytes, v.Flows = c.eng.BackendCounters(b.ID)
	hop, known := p.hops[b.Addr]
	switch {
	case !known:
		v.NextHop = "pending"
	case hop.MAC != (packet.MAC{}):
		v.MAC, v.NextHop = net.HardwareAddr(hop.MAC[:]).String(), "resolved"
	case hop.Problem != "":
		v.NextHop = "unresolved: " + hop.Problem
	default:
		v.NextHop = "unresolved"
	}
	v.NewFlows = !b.Drained && v.Health != "unhealthy" && v.MAC != ""
	return v
}

// conntrackListLimit bounds a listing so a full table cannot exhaust memory.
const conntrackListLimit = 100000

// Conntrack lists tracked flows.
func (c *core) Conntrack() []api.Flow {
	now := time.Now().UnixNano()
	out := []api.Flow{}
	for _, e := range c.eng.Conntrack().Entries(conntrackListLimit) {
		out = append(out, flowView(e, now))
	}
	return out
}

// flowView shows both tuples: client -> VIP, and the backend's side; a
// full-NAT flow's backend sees the SNAT address, a DSR flow is one-way.
func flowView(e conntrack.Entry, now int64) api.Flow {
	ep := func(a packet.Addr, p uint16) string { return netip.AddrPortFrom(a.IP(), p).String() }
	f := api.Flow{Proto: e.Fwd.Proto.String(), Client: ep(e.Fwd.Src, e.Fwd.SrcPort), VIP: ep(e.Fwd.Dst, e.Fwd.DstPort),
		Backend: ep(e.Rev.Src, e.Rev.SrcPort), BackendID: e.Backend, State: e.State.String(), OneWay: e.OneWay,
		IdleSeconds: float64(now-e.LastSeen) / 1e9, Packets: e.Packets, Bytes: e.Bytes}
	if e.FullNAT() {
		f.SNAT = ep(e.Rev.Dst, e.Rev.DstPort)
	}
	return f
}

// Stats gathers every counter.
func (c *core) Stats() (api.Stats, error) {
	protos, err := c.kern.ProtoStats()
	if err != nil {
		return api.Stats{}, err
	}
	verdicts, err := c.kern.VerdictStats()
	if err != nil {
		return api.Stats{}, err
	}
	es := c.eng.Stats()
	ct := c.eng.Conntrack()
	cc := ct.Counters()
	st := api.Stats{
		Protocols: counters(protos), XDPVerdicts: counters(verdicts),
		Dataplane: api.DataplaneStats{RxPackets: es.RxPackets, Forwarded: es.Forwarded, Replied: es.Replied, NewFlows: es.NewFlows,
			RebuiltFlows: es.RebuiltFlows, EchoReplies: es.EchoReplies, ICMPTranslated: es.ICMPTranslated,
			FragNeededSent: es.FragNeededSent, Express: es.Express, SNATPortsInUse: c.eng.SNATPortsInUse()},
		Drops: es.Drops,
		Conntrack: api.ConntrackStats{Entries: ct.Len(), Capacity: ct.Capacity(), Inserts: cc.Inserts,
			Evictions: cc.Evictions, Expired: cc.Expired, Collisions: cc.Collisions, IgnoredRSTs: cc.IgnoredRSTs},
		Services: c.Services(),
	}
	// Drops in the XDP program join the workers' drops by reason.
	st.Drops["firewall"] = verdicts[bpf.VerdictFirewallDrop.String()].Packets
	st.Drops["dos"] = verdicts[bpf.VerdictDosDrop.String()].Packets
	if c.env.sockets != nil {
		st.Sockets = c.env.sockets()
	}
	return st, nil
}

func counters(m map[string]bpf.Counter) map[string]api.Counter {
	out := make(map[string]api.Counter, len(m))
	for k, v := range m {
		out[k] = api.Counter{Packets: v.Packets, Bytes: v.Bytes}
	}
	return out
}

func socketView(s queueSocket) api.SocketStats {
	c := s.Counters()
	v := api.SocketStats{Interface: s.ifname, Queue: s.Queue(), Mode: "copy", SharedUMEM: s.shared,
		RxPackets: c.RxPackets, TxPackets: c.TxPackets, TxRingFull: c.TxRingFull, NoFreeFrame: c.NoFrame,
		KickErrors: c.KickErrors, Kicks: c.Kicks, RxWakeups: c.RxWakeups}
	if zc, _ := s.ZeroCopy(); zc {
		v.Mode = "zerocopy"
	}
	if k, err := s.KernelStats(); err == nil {
		v.RxDropped, v.RxRingFull, v.FillRingEmpty = k.Rx_dropped, k.Rx_ring_full, k.Rx_fill_ring_empty_descs
		v.InvalidDescs = k.Rx_invalid_descs + k.Tx_invalid_descs
	}
	return v
}

// BGP shows the settings of the current state, the speaker's sessions and
// what it announces.
func (c *core) BGP() (api.BGP, error) {
	out := api.BGP{Peers: []api.BGPPeer{}, Announced: []string{}, Announcing: c.announcing.Load()}
	if b := c.current().state.BGP; b != nil {
		s := &api.BGPSettings{ASN: b.ASN, RouterID: b.RouterID.String(), ListenPort: b.ListenPort, HoldSeconds: b.HoldSeconds}
		for _, p := range b.Peers {
			s.Peers = append(s.Peers, p.String())
		}
		out.Settings = s
	}
	sp := c.speaker.Load()
	if sp == nil {
		return out, nil
	}
	peers, err := sp.Peers()
	if err != nil {
		return out, fmt.Errorf("bgp peers: %w", err)
	}
	for _, p := range peers {
		out.Peers = append(out.Peers, api.BGPPeer{Address: p.Addr.String(), ASN: p.ASN, State: p.State,
			UptimeSeconds: uint64(p.Uptime / time.Second)})
	}
	for _, v := range sp.Announced() {
		out.Announced = append(out.Announced, netip.PrefixFrom(v, 32).String())
	}
	return out, nil
}
