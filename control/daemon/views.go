package daemon

import (
	"net/netip"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// Services lists the desired state with live counters.
func (d *Daemon) Services() []api.Service {
	lv := d.live()
	out := []api.Service{}
	for _, s := range d.store.Snapshot().Services {
		out = append(out, d.serviceView(s, lv))
	}
	return out
}

// liveState is what the views read besides the store, gathered once per
// listing: active flows per backend and the next-hop MACs last pushed.
type liveState struct {
	active map[uint32]uint64
	macs   map[uint32]packet.MAC
}

func (d *Daemon) live() liveState {
	lv := liveState{active: d.eng.Conntrack().ActiveByBackend(), macs: map[uint32]packet.MAC{}}
	d.mu.Lock()
	if d.cfg != nil {
		for _, s := range d.cfg.Services {
			for _, b := range s.Backends {
				lv.macs[b.ID] = b.MAC
			}
		}
	}
	d.mu.Unlock()
	return lv
}

func (d *Daemon) serviceView(s config.ServiceState, lv liveState) api.Service {
	v := api.Service{ID: s.ID, VIP: netip.AddrPortFrom(s.VIP, s.Port).String(), Port: s.Port, Proto: s.Proto,
		Health: s.Health, Backends: []api.Backend{}}
	for _, b := range s.Backends {
		bv := d.backendView(s.ID, b, lv)
		v.Backends = append(v.Backends, bv)
		v.Packets += bv.Packets
		v.Bytes += bv.Bytes
		v.ActiveConns += bv.ActiveConns
	}
	return v
}

func (d *Daemon) backendView(serviceID uint32, b config.BackendState, lv liveState) api.Backend {
	v := api.Backend{ID: b.ID, ServiceID: serviceID, Address: netip.AddrPortFrom(b.Addr, b.Port).String(),
		Weight: b.Weight, Status: "active", ActiveConns: lv.active[b.ID]}
	if b.Drained {
		v.Status = "drained"
	}
	v.Health = "unchecked"
	if st, ok := d.health.Status(b.ID); ok {
		v.Health, v.HealthError = "healthy", st.LastError
		if !st.Healthy {
			v.Health = "unhealthy"
		}
	}
	v.Packets, v.Bytes, v.Flows = d.eng.BackendCounters(b.ID)
	if mac := lv.macs[b.ID]; mac != (packet.MAC{}) {
		v.MAC = netHW(mac).String()
	}
	return v
}

// conntrackListLimit bounds a listing so a full table cannot exhaust memory.
const conntrackListLimit = 100000

// Conntrack lists tracked flows.
func (d *Daemon) Conntrack() []api.Flow {
	now := time.Now().UnixNano()
	out := []api.Flow{}
	for _, e := range d.eng.Conntrack().Entries(conntrackListLimit) {
		out = append(out, flowView(e, now))
	}
	return out
}

func flowView(e conntrack.Entry, now int64) api.Flow {
	proto := "tcp"
	if e.Fwd.Proto == config.UDP {
		proto = "udp"
	}
	ep := func(a [4]byte, p uint16) string { return netip.AddrPortFrom(netip.AddrFrom4(a), p).String() }
	return api.Flow{Proto: proto, Client: ep(e.Fwd.Src, e.Fwd.SrcPort), VIP: ep(e.Fwd.Dst, e.Fwd.DstPort),
		Backend: ep(e.Rev.Src, e.Rev.SrcPort), BackendID: e.Backend, State: e.State.String(),
		IdleSeconds: float64(now-e.LastSeen) / 1e9, Packets: e.Packets, Bytes: e.Bytes}
}

// Stats gathers every counter.
func (d *Daemon) Stats() (api.Stats, error) {
	protos, err := d.prog.ProtoStats()
	if err != nil {
		return api.Stats{}, err
	}
	verdicts, err := d.prog.VerdictStats()
	if err != nil {
		return api.Stats{}, err
	}
	es := d.eng.Stats()
	ct := d.eng.Conntrack()
	cc := ct.Counters()
	st := api.Stats{
		Protocols: counters(protos), XDPVerdicts: counters(verdicts),
		Dataplane: api.DataplaneStats{RxPackets: es.RxPackets, Forwarded: es.Forwarded, Replied: es.Replied, NewFlows: es.NewFlows},
		Drops:     es.Drops,
		Conntrack: api.ConntrackStats{Entries: ct.Len(), Capacity: ct.Capacity(), Inserts: cc.Inserts,
			Evictions: cc.Evictions, Expired: cc.Expired, Collisions: cc.Collisions},
		Services: d.Services(),
	}
	// Drops in the XDP program join the workers' drops by reason.
	st.Drops["firewall"] = verdicts["fw_drop"].Packets
	st.Drops["dos"] = verdicts["dos_drop"].Packets
	for _, s := range d.sockets {
		st.Sockets = append(st.Sockets, d.socketView(s))
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

func (d *Daemon) socketView(s queueSocket) api.SocketStats {
	c := s.Counters()
	v := api.SocketStats{Interface: s.ifname, Queue: s.Queue(), RxPackets: c.RxPackets, TxPackets: c.TxPackets,
		TxRingFull: c.TxRingFull, NoFreeFrame: c.NoFrame, KickErrors: c.KickErrors}
	if k, err := s.KernelStats(); err == nil {
		v.RxDropped, v.RxRingFull, v.FillRingEmpty = k.Rx_dropped, k.Rx_ring_full, k.Rx_fill_ring_empty_descs
		v.InvalidDescs = k.Rx_invalid_descs + k.Tx_invalid_descs
	}
	return v
}
