package daemon

import (
	"net/netip"
	"reflect"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
)

// reconfig builds the dataplane config from the services and the current
// neighbour table, and pushes it to the dataplane and the XDP maps if it
// differs from the last one pushed.
func (d *Daemon) reconfig() error {
	cfg := dataplane.Config{UpstreamMAC: macOf(d.up.MAC), BackendMAC: macOf(d.down.MAC)}
	steerSvc := map[bpf.Endpoint]uint32{}
	steerBe := map[bpf.Endpoint]uint32{}
	var backendID uint32
	for i, s := range d.services {
		svc := dataplane.Service{ID: uint32(i + 1), VIP: s.VIP, Port: s.Port, Proto: s.Proto}
		steerSvc[bpf.Endpoint{Addr: s.VIP, Port: s.Port, Proto: s.Proto}] = svc.ID
		for _, b := range s.Backends {
			backendID++
			be := dataplane.Backend{ID: backendID, Addr: b.Addr, Port: b.Port, Weight: b.Weight}
			if mac, ok := d.nextHopMAC(b.Addr); ok {
				be.MAC = macOf(mac)
			}
			svc.Backends = append(svc.Backends, be)
			steerBe[bpf.Endpoint{Addr: b.Addr, Port: b.Port, Proto: s.Proto}] = svc.ID
		}
		cfg.Services = append(cfg.Services, svc)
	}
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

// nextHopMAC resolves the MAC for reaching a backend through the backend
// interface; false while unknown (packets to it are counted as no_neighbour).
func (d *Daemon) nextHopMAC(a netip.Addr) ([]byte, bool) {
	hop, ifindex, err := netlink.NextHop(a)
	if err != nil {
		d.log.Warn("no route to backend", zap.Stringer("backend", a), zap.Error(err))
		return nil, false
	}
	if ifindex != d.down.Index {
		d.log.Warn("backend is not reached through the backend interface",
			zap.Stringer("backend", a), zap.String("backend_if", d.down.Name), zap.Int("route_ifindex", ifindex))
		return nil, false
	}
	mac, ok, err := d.neigh.Lookup(ifindex, hop)
	if err != nil {
		d.log.Warn("neighbour lookup", zap.Stringer("next_hop", hop), zap.Error(err))
	}
	return mac, ok
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
