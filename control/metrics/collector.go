package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

// Source is what the collector reads; the daemon implements it.
type Source interface {
	Stats() (api.Stats, error)
	FirewallRules() ([]api.FirewallRule, error)
	DosPolicies() ([]api.DosPolicy, error)
	BGP() (api.BGP, error)
}

// NewHandler serves /metrics for src.
func NewHandler(src Source, log *zap.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{src: src})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(log)}))
	return mux
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("scmlb_"+name, help, labels, nil)
}

var (
	xdpPackets   = desc("xdp_packets_total", "Packets seen by the XDP program, by protocol.", "protocol")
	xdpBytes     = desc("xdp_bytes_total", "Bytes seen by the XDP program, by protocol.", "protocol")
	xdpVerdicts  = desc("xdp_verdict_packets_total", "Packets by XDP program verdict.", "verdict")
	dpPackets    = desc("dataplane_packets_total", "Packets handled by the workers.", "direction")
	dpExpress    = desc("dataplane_express_packets_total", "Of the packets forwarded and replied, those the express path handled (a cached IPv4 flow's packet replayed without the full path).")
	flowsCreated = desc("flows_created_total", "Flows the workers started tracking.")
	flowsRebuilt = desc("flows_rebuilt_total", "Of the flows created, those rebuilt from a backend's packet (after a restart).")
	drops        = desc("drops_total", "Packets dropped, by reason (workers and XDP filters).", "reason")
	ctEntries    = desc("conntrack_entries", "Tracked flows.")
	ctCapacity   = desc("conntrack_capacity", "Most flows the table holds.")
	ctEvents     = desc("conntrack_events_total", "Conntrack table events.", "event")
	svcPackets   = desc("service_packets_total", "Packets of a service, both directions.", "service")
	svcBytes     = desc("service_bytes_total", "Bytes of a service, both directions.", "service")
	svcActive    = desc("service_active_connections", "Tracked flows of a service that are not closed.", "service")
	svcMode      = desc("service_mode", "1 for the service's forwarding mode (nat, fullnat, dsr-l2, dsr-ipip).", "service", "mode")
	bePackets    = desc("backend_packets_total", "Packets to and from a backend.", "service", "backend")
	beBytes      = desc("backend_bytes_total", "Bytes to and from a backend.", "service", "backend")
	beFlows      = desc("backend_flows_total", "Flows assigned to a backend.", "service", "backend")
	beActive     = desc("backend_active_connections", "Tracked flows of a backend that are not closed.", "service", "backend")
	beHealthy    = desc("backend_healthy", "1 unless the backend's health check says it is down (unchecked: 1).", "service", "backend")
	beDrained    = desc("backend_drained", "1 if the backend is drained.", "service", "backend")
	beNewFlows   = desc("backend_new_flows", "1 while the backend takes new flows (not drained, not unhealthy, next hop resolved).", "service", "backend")
	xskPackets   = desc("xsk_packets_total", "Packets through an AF_XDP socket.", "interface", "queue", "direction")
	xskEvents    = desc("xsk_events_total", "AF_XDP ring events: ring full, no frame, kick errors, kernel drops.", "interface", "queue", "event")
	xskInfo      = desc("xsk_socket_info", "1 per AF_XDP socket, with its mode (zerocopy or copy) and whether it shares its worker's UMEM.", "interface", "queue", "mode", "shared_umem")
	fwDropped    = desc("firewall_rule_dropped_packets_total", "Packets dropped by a firewall rule.", "rule", "network")
	dosDropped   = desc("dos_policy_dropped_packets_total", "Packets dropped by a DoS policy.", "policy")
	dosBlocked   = desc("dos_blocked_sources", "Sources a DoS policy blocks now.", "policy")
	bgpUp        = desc("bgp_peer_up", "1 while the BGP session with the router is established.", "peer")
	bgpUptime    = desc("bgp_peer_uptime_seconds", "How long the BGP session has been established (0: down).", "peer")
	bgpAnnounced = desc("bgp_announced", "1 for each prefix announced to the routers.", "prefix")
	allDescs     = []*prometheus.Desc{xdpPackets, xdpBytes, xdpVerdicts, dpPackets, flowsCreated, drops, ctEntries,
		ctCapacity, ctEvents, svcPackets, svcBytes, svcActive, svcMode, bePackets, beBytes, beFlows, beActive, beHealthy,
		beDrained, beNewFlows, flowsRebuilt, xskPackets, xskEvents, xskInfo, fwDropped, dosDropped, dosBlocked, bgpUp, bgpUptime,
		bgpAnnounced, dpExpress}
)

type collector struct{ src Source }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect reports a failed read as an invalid metric, so the scrape fails
// loudly instead of silently missing series.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st, err := c.src.Stats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(xdpPackets, err)
		return
	}
	for p, v := range st.Protocols {
		counter(xdpPackets, v.Packets, p)
		counter(xdpBytes, v.Bytes, p)
	}
	for verdict, v := range st.XDPVerdicts {
		counter(xdpVerdicts, v.Packets, verdict)
	}
	counter(dpPackets, st.Dataplane.RxPackets, "rx")
	counter(dpPackets, st.Dataplane.Forwarded, "forwarded")
	counter(dpPackets, st.Dataplane.Replied, "replied")
	counter(dpExpress, st.Dataplane.Express)
	counter(flowsCreated, st.Dataplane.NewFlows)
	counter(flowsRebuilt, st.Dataplane.RebuiltFlows)
	for reason, v := range st.Drops {
		counter(drops, v, reason)
	}
	ct := st.Conntrack
	gauge(ctEntries, float64(ct.Entries))
	gauge(ctCapacity, float64(ct.Capacity))
	counter(ctEvents, ct.Inserts, "insert")
	counter(ctEvents, ct.Evictions, "eviction")
	counter(ctEvents, ct.Expired, "expiry")
	counter(ctEvents, ct.Collisions, "collision")
	counter(ctEvents, ct.IgnoredRSTs, "ignored_rst")
	for _, s := range st.Services {
		name := s.VIP + "/" + s.Proto
		counter(svcPackets, s.Packets, name)
		counter(svcBytes, s.Bytes, name)
		gauge(svcActive, float64(s.ActiveConns), name)
		if s.Mode != "" {
			gauge(svcMode, 1, name, s.Mode)
		}
		for _, b := range s.Backends {
			counter(bePackets, b.Packets, name, b.Address)
			counter(beBytes, b.Bytes, name, b.Address)
			counter(beFlows, b.Flows, name, b.Address)
			gauge(beActive, float64(b.ActiveConns), name, b.Address)
			gauge(beHealthy, boolValue(b.Health != "unhealthy"), name, b.Address)
			gauge(beDrained, boolValue(b.Status == "drained"), name, b.Address)
			gauge(beNewFlows, boolValue(b.NewFlows), name, b.Address)
		}
	}
	for _, x := range st.Sockets {
		q := strconv.Itoa(x.Queue)
		gauge(xskInfo, 1, x.Interface, q, x.Mode, strconv.FormatBool(x.SharedUMEM))
		counter(xskPackets, x.RxPackets, x.Interface, q, "rx")
		counter(xskPackets, x.TxPackets, x.Interface, q, "tx")
		for event, v := range map[string]uint64{"kick": x.Kicks, "rx_wakeup": x.RxWakeups, "tx_ring_full": x.TxRingFull, "no_free_frame": x.NoFreeFrame,
			"kick_error": x.KickErrors, "rx_dropped": x.RxDropped, "rx_ring_full": x.RxRingFull,
			"fill_ring_empty": x.FillRingEmpty, "invalid_desc": x.InvalidDescs} {
			counter(xskEvents, v, x.Interface, q, event)
		}
	}
	rules, err := c.src.FirewallRules()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(fwDropped, err)
		return
	}
	for _, r := range rules {
		counter(fwDropped, r.DroppedPackets, strconv.Itoa(int(r.ID)), r.Network)
	}
	ps, err := c.src.DosPolicies()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(dosDropped, err)
		return
	}
	for _, p := range ps {
		id := strconv.Itoa(int(p.ID))
		counter(dosDropped, p.DroppedPackets, id)
		gauge(dosBlocked, float64(len(p.Blocked)), id)
	}
	b, err := c.src.BGP()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(bgpUp, err)
		return
	}
	for _, p := range b.Peers {
		gauge(bgpUp, boolValue(p.State == "established"), p.Address)
		gauge(bgpUptime, float64(p.UptimeSeconds), p.Address)
	}
	for _, p := range b.Announced {
		gauge(bgpAnnounced, 1, p)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
