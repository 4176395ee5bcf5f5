package metrics

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

type source struct{ err error }

func (s source) Stats() (api.Stats, error) {
	return api.Stats{
		Protocols: map[string]api.Counter{"tcp": {Packets: 10, Bytes: 1000}},
		Drops:     map[string]uint64{"no_flow": 2, "firewall": 3},
		Dataplane: api.DataplaneStats{RxPackets: 9, Forwarded: 5, Replied: 4, NewFlows: 2, RebuiltFlows: 1, Express: 3},
		Conntrack: api.ConntrackStats{Entries: 2, Capacity: 64, IgnoredRSTs: 3},
		Services: []api.Service{{VIP: "10.0.100.1:80", Proto: "tcp", Mode: "dsr-ipip", Packets: 9, Backends: []api.Backend{
			{Address: "10.0.2.11:80", Packets: 9, Flows: 2, Health: "unhealthy", Status: "active"}}}},
		Sockets: []api.SocketStats{{Interface: "up0", Queue: 0, Mode: "copy", SharedUMEM: true, RxPackets: 5, FillRingEmpty: 1}},
	}, s.err
}
func (source) FirewallRules() ([]api.FirewallRule, error) {
	return []api.FirewallRule{{ID: 4, Network: "10.9.0.0/16", DroppedPackets: 3}}, nil
}
func (source) DosPolicies() ([]api.DosPolicy, error) {
	return []api.DosPolicy{{ID: 1, Blocked: []api.BlockedSource{{Address: "10.0.1.2"}}}}, nil
}

func (source) BGP() (api.BGP, error) {
	return api.BGP{Peers: []api.BGPPeer{{Address: "10.0.5.1", State: "established", UptimeSeconds: 42},
		{Address: "10.0.5.2", State: "active"}}, Announced: []string{"10.0.100.1/32"}}, nil
}

func TestScrape(t *testing.T) {
	rec := httptest.NewRecorder()
	NewHandler(source{}, zap.NewNop()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := fams[name]
		if !ok {
			t.Fatalf("no family %s", name)
		}
	metrics:
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	svc := map[string]string{"service": "10.0.100.1:80/tcp", "backend": "10.0.2.11:80"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"scmlb_xdp_packets_total", map[string]string{"protocol": "tcp"}, 10},
		{"scmlb_drops_total", map[string]string{"reason": "firewall"}, 3},
		{"scmlb_dataplane_packets_total", map[string]string{"direction": "replied"}, 4},
		{"scmlb_dataplane_express_packets_total", nil, 3},
		{"scmlb_backend_flows_total", svc, 2},
		{"scmlb_backend_healthy", svc, 0},
		{"scmlb_backend_drained", svc, 0},
		{"scmlb_xsk_events_total", map[string]string{"interface": "up0", "event": "fill_ring_empty"}, 1},
		{"scmlb_conntrack_capacity", nil, 64},
		{"scmlb_firewall_rule_dropped_packets_total", map[string]string{"rule": "4"}, 3},
		{"scmlb_dos_blocked_sources", map[string]string{"policy": "1"}, 1},
		{"scmlb_service_mode", map[string]string{"service": "10.0.100.1:80/tcp", "mode": "dsr-ipip"}, 1},
		{"scmlb_backend_new_flows", svc, 0},
		{"scmlb_flows_rebuilt_total", nil, 1},
		{"scmlb_conntrack_events_total", map[string]string{"event": "ignored_rst"}, 3},
		{"scmlb_xsk_socket_info", map[string]string{"interface": "up0", "mode": "copy", "shared_umem": "true"}, 1},
		{"scmlb_bgp_peer_up", map[string]string{"peer": "10.0.5.1"}, 1},
		{"scmlb_bgp_peer_up", map[string]string{"peer": "10.0.5.2"}, 0},
		{"scmlb_bgp_peer_uptime_seconds", map[string]string{"peer": "10.0.5.1"}, 42},
		{"scmlb_bgp_announced", map[string]string{"prefix": "10.0.100.1/32"}, 1},
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestScrapeFailsLoudly(t *testing.T) {
	rec := httptest.NewRecorder()
	NewHandler(source{err: errors.New("map read failed")}, zap.NewNop()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 500 {
		t.Fatalf("status %d for a failed collection", rec.Code)
	}
}
