package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
)

// reconfig builds the dataplane config from the desired state and the
// current neighbour table, and pushes it to the dataplane and the XDP maps
// if it differs from the last one pushed. Callers hold d.mu.
func (d *Daemon) reconfig() error {
	cfg := dataplane.Config{UpstreamMAC: macOf(d.up.MAC), BackendMAC: macOf(d.down.MAC)}
	steerSvc := map[bpf.Endpoint]uint32{}
	steerBe := map[bpf.Endpoint]uint32{}
	hops := d.newNextHops()
	for _, s := range d.store.Snapshot().Services {
		proto := s.ProtoNumber()
		svc := dataplane.Service{ID: s.ID, VIP: s.VIP, Port: s.Port, Proto: proto}
		steerSvc[bpf.Endpoint{Addr: s.VIP, Port: s.Port, Proto: proto}] = svc.ID
		for _, b := range s.Backends {
			be := dataplane.Backend{ID: b.ID, Addr: b.Addr, Port: b.Port, Weight: b.Weight}
			if b.Drained || !d.health.Healthy(b.ID) {
				be.Weight = 0 // no new flows; tracked flows keep their backend
			}
			if mac := hops.mac(b.Addr); mac != nil {
				be.MAC = macOf(mac)
			}
			svc.Backends = append(svc.Backends, be)
			steerBe[bpf.Endpoint{Addr: b.Addr, Port: b.Port, Proto: proto}] = svc.ID
		}
		cfg.Services = append(cfg.Services, svc)
	}
	d.unresolved = hops.missing
	if d.cfg != nil && reflect.DeepEqual(*d.cfg, cfg) {
		return nil
	}
	// Dataplane first: a steered packet must find its service in the table.
	if err := d.eng.Reconfig(cfg); err != nil {
		return err
	}
	if err := d.prog.SetServices(steerSvc); err != nil {
		return err
	}
	if err := d.prog.SetBackends(steerBe); err != nil {
		return err
	}
	d.cfg = &cfg
	for _, s := range cfg.Services {
		for _, b := range s.Backends {
			d.log.Debug("backend", zap.Uint32("service", s.ID), zap.Stringer("addr", netip.AddrPortFrom(b.Addr, b.Port)),
				zap.Stringer("mac", netHW(b.MAC)))
		}
	}
	return nil
}

// nextHops resolves backend MACs for one reconfiguration: one neighbour
// dump of the backend interface, one route lookup per distinct backend.
type nextHops struct {
	d       *Daemon
	table   map[netip.Addr]net.HardwareAddr
	results map[netip.Addr]net.HardwareAddr
	missing int
}

func (d *Daemon) newNextHops() *nextHops {
	t, err := d.neigh.Table(d.down.Index)
	if err != nil {
		d.log.Warn("read neighbours", zap.Error(err))
	}
	return &nextHops{d: d, table: t, results: map[netip.Addr]net.HardwareAddr{}}
}

// mac is the next-hop MAC for a backend, nil while unknown (packets to it
// are then counted as no_neighbour).
func (h *nextHops) mac(a netip.Addr) net.HardwareAddr {
	if m, ok := h.results[a]; ok {
		return m
	}
	m, problem := h.resolve(a)
	h.results[a] = m
	if m == nil {
		h.missing++
	}
	h.d.noteProblem(a, problem)
	return m
}

func (h *nextHops) resolve(a netip.Addr) (net.HardwareAddr, string) {
	hop, ifindex, err := netlink.NextHop(a)
	if err != nil {
		return nil, err.Error()
	}
	if ifindex != h.d.down.Index {
		return nil, fmt.Sprintf("route leaves by ifindex %d, not the backend interface %s", ifindex, h.d.down.Name)
	}
	if m, ok := h.table[hop]; ok {
		return m, ""
	}
	if err := h.d.neigh.Request(ifindex, hop); err != nil {
		return nil, err.Error()
	}
	return nil, ""
}

// noteProblem logs a backend's next-hop problem when it appears or clears,
// not on every refresh.
func (d *Daemon) noteProblem(a netip.Addr, problem string) {
	if d.problems[a] == problem {
		return
	}
	if problem != "" {
		d.log.Warn("backend unreachable", zap.Stringer("backend", a), zap.String("reason", problem))
	} else if d.problems[a] != "" {
		d.log.Info("backend reachable again", zap.Stringer("backend", a))
	}
	if problem == "" {
		delete(d.problems, a)
	} else {
		d.problems[a] = problem
	}
}

func (d *Daemon) logStats() {
	st := d.eng.Stats()
	fields := []zap.Field{zap.Uint64("rx", st.RxPackets), zap.Uint64("forwarded", st.Forwarded),
		zap.Uint64("replied", st.Replied), zap.Uint64("new_flows", st.NewFlows), zap.Int("conntrack", d.eng.Conntrack().Len())}
	for k, v := range st.Drops {
		if v > 0 {
			fields = append(fields, zap.Uint64("drop_"+k, v))
		}
	}
	d.log.Info("stats", fields...)
	for _, s := range d.cfg.Services {
		for _, b := range s.Backends {
			p, by, f := d.eng.BackendCounters(b.ID)
			d.log.Info("backend stats", zap.Stringer("service", netip.AddrPortFrom(s.VIP, s.Port)),
				zap.Stringer("backend", netip.AddrPortFrom(b.Addr, b.Port)),
				zap.Uint64("packets", p), zap.Uint64("bytes", by), zap.Uint64("flows", f))
		}
	}
	if xs, err := d.prog.VerdictStats(); err == nil {
		d.log.Info("xdp verdicts", zap.Any("verdicts", xs))
	}
}
