package e2e

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// scrape fetches /metrics from inside the lb namespace and parses it.
func scrape(t *testing.T, lab *testenv.Lab, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := lab.LB.HTTPClient(2 * time.Second).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return fams
}

// sample returns the value of the series of family name whose labels
// include want; ok is false if there is none.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
series:
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
				continue series
			}
		}
		if m.Counter != nil {
			return m.Counter.GetValue(), true
		}
		return m.Gauge.GetValue(), true
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	lab, _ := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2})
	const addr = "127.0.0.1:9110"
	vip := lab.VIP.String()
	d := startDaemonIn(t, lab, t.TempDir(), "--metrics-addr", addr, "--vip", vip+":80",
		"--backend", lab.BackendAddrs[0].String(), "--backend", lab.BackendAddrs[1].String())
	httpOK(t, lab, 1)

	svc := vip + ":80/tcp"
	beLabels := func(i int) map[string]string {
		return map[string]string{"service": svc, "backend": lab.BackendAddrs[i].String() + ":80"}
	}
	before := scrape(t, lab, addr)
	seen := spread(t, lab, 20)
	after := scrape(t, lab, addr)

	for i, name := range []string{"backend1", "backend2"} {
		b0, ok0 := sample(before, "scmlb_backend_flows_total", beLabels(i))
		b1, ok1 := sample(after, "scmlb_backend_flows_total", beLabels(i))
		if !ok0 || !ok1 {
			t.Fatalf("no scmlb_backend_flows_total for %s", name)
		}
		if got := int(b1 - b0); got != seen[name] {
			t.Errorf("%s: metrics count %d new flows, the client saw %d", name, got, seen[name])
		}
		if h, _ := sample(after, "scmlb_backend_healthy", beLabels(i)); h != 1 {
			t.Errorf("%s healthy = %v", name, h)
		}
	}
	// Each connection is at least SYN, ACK, request, FIN, ACK towards the
	// backend and SYN-ACK, response, FIN-ACK back.
	p0, _ := sample(before, "scmlb_service_packets_total", map[string]string{"service": svc})
	p1, _ := sample(after, "scmlb_service_packets_total", map[string]string{"service": svc})
	if p1-p0 < 20*7 {
		t.Errorf("service packets grew by %v for 20 connections", p1-p0)
	}
	fwd0, _ := sample(before, "scmlb_dataplane_packets_total", map[string]string{"direction": "forwarded"})
	fwd1, _ := sample(after, "scmlb_dataplane_packets_total", map[string]string{"direction": "forwarded"})
	rx1, ok := sample(after, "scmlb_xsk_packets_total", map[string]string{"interface": lab.UpstreamIf, "direction": "rx"})
	if !ok || rx1 < fwd1 || fwd1-fwd0 < 20*4 {
		t.Errorf("xsk rx %v, forwarded %v -> %v", rx1, fwd0, fwd1)
	}
	for _, name := range []string{"scmlb_drops_total", "scmlb_xdp_verdict_packets_total", "scmlb_xsk_events_total",
		"scmlb_conntrack_entries", "scmlb_xdp_packets_total"} {
		if _, ok := after[name]; !ok {
			t.Errorf("missing %s", name)
		}
	}
	if v, _ := sample(after, "scmlb_xdp_verdict_packets_total", map[string]string{"verdict": "steer_service"}); v < fwd1 {
		t.Errorf("steer_service %v < forwarded %v", v, fwd1)
	}
	stopAndCheckDetached(t, lab, d)
}
