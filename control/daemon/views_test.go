package daemon

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

func TestViews(t *testing.T) {
	c := newTestCore(t, "", Limits)
	addLab(t, c)
	c.DrainBackend(2)
	c.probes.setHealthy(1, true)
	// A tracked flow to backend 1.
	fwd := packet.Tuple{Src: packet.Addr4([]byte{10, 0, 1, 2}), Dst: packet.Addr4([]byte{10, 0, 100, 1}), SrcPort: 40000, DstPort: 80, Proto: ipproto.TCP}
	rev := packet.Tuple{Src: packet.Addr4([]byte{10, 0, 2, 11}), Dst: fwd.Src, SrcPort: 80, DstPort: 40000, Proto: ipproto.TCP}
	seg := &packet.Segment{Flags: packet.FlagSYN, WScale: packet.NoWScale}
	c.eng.Conntrack().Insert(fwd, rev, conntrack.NewFlow{Backend: 1}, seg, 60, time.Now().UnixNano())

	svcs := c.Services()
	if len(svcs) != 1 || svcs[0].VIP != "10.0.100.1:80" || svcs[0].Proto != "tcp" || svcs[0].ActiveConns != 1 {
		t.Fatalf("services %+v", svcs)
	}
	b1, b2 := svcs[0].Backends[0], svcs[0].Backends[1]
	if b1.Health != "healthy" || b1.Status != "active" || !b1.NewFlows || b1.ActiveConns != 1 || b1.MAC != "02:00:0a:00:02:0b" {
		t.Errorf("backend 1 %+v", b1)
	}
	if b2.Health != "unchecked" || b2.Status != "drained" || b2.NewFlows {
		t.Errorf("backend 2 %+v", b2)
	}
	flows := c.Conntrack()
	if len(flows) != 1 || flows[0].Client != "10.0.1.2:40000" || flows[0].Backend != "10.0.2.11:80" ||
		flows[0].State != conntrack.SynSent.String() || flows[0].Proto != "tcp" {
		t.Fatalf("flows %+v", flows)
	}
	c.env.sockets = func() []api.SocketStats { return []api.SocketStats{{Interface: "up0", RxPackets: 3}} }
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Drops["firewall"] != 7 || st.Protocols["tcp"].Packets != 1 || st.Conntrack.Entries != 1 ||
		len(st.Sockets) != 1 || len(st.Services) != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, ok := st.Drops["spoofed_reply"]; !ok {
		t.Error("a drop reason is missing from stat")
	}
	if _, err := c.AddFirewallRule(api.AddFirewallRuleRequest{Network: "198.51.100.0/24"}); err != nil {
		t.Fatal(err)
	}
	rules, _ := c.FirewallRules()
	if len(rules) != 1 || rules[0].Proto != "any" || rules[0].DroppedPackets != 7 || rules[0].DstPorts != "any" {
		t.Fatalf("rules %+v", rules)
	}
	for _, bad := range []api.AddFirewallRuleRequest{{Network: "x"}, {Network: "10.0.0.0/8", Proto: "gre"},
		{Network: "10.0.0.0/8", SrcPorts: "9-1"}} {
		if _, err := c.AddFirewallRule(bad); !errors.Is(err, config.ErrInvalid) {
			t.Errorf("rule %+v: %v", bad, err)
		}
	}
	if err := c.DeleteFirewallRule(1); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteFirewallRule(1); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := c.AddDosPolicy(api.AddDosPolicyRequest{Proto: "udp", LimitPPS: 10, BlockSeconds: 10}); err != nil {
		t.Fatal(err)
	}
	ps, _ := c.DosPolicies()
	if len(ps) != 1 || ps[0].Type != "any" || ps[0].Status != "not triggered" {
		t.Fatalf("policies %+v", ps)
	}
	if err := c.DeleteDosPolicy(1); err != nil {
		t.Fatal(err)
	}
	if err := c.SetServiceHealth(1, &config.HealthCheck{Type: "tcp", IntervalMs: 100, TimeoutMs: 50, Rise: 1, Fall: 1}); err != nil {
		t.Fatal(err)
	}
	if n := len(c.probes.targets); n != 2 {
		t.Fatalf("%d probes after setting a check", n)
	}
	if err := c.DeleteService(1, false); !errors.Is(err, config.ErrConflict) {
		t.Fatalf("delete with a live backend: %v", err)
	}
	if err := c.DeleteBackend(2); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteService(1, true); err != nil || len(c.Services()) != 0 || len(c.probes.targets) != 0 {
		t.Fatalf("forced delete: %v", err)
	}
}

// A dump at the workers only: one at a time, bounded by count.
func TestDumpSession(t *testing.T) {
	c := newTestCore(t, "", Limits)
	c.env.upName, c.env.downName = "up0", "down0"
	req := api.DumpRequest{At: "worker", Count: 2, Duration: time.Minute, Snaplen: 128}
	s, err := c.StartDump(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartDump(req); !errors.Is(err, config.ErrConflict) {
		t.Fatalf("second dump: %v", err)
	}
	if _, err := c.StartDump(api.DumpRequest{At: "xdp", Proto: "gre", Count: 1, Duration: time.Second}); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("bad protocol: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next without traffic: %v", err)
	}
	s.Close()
	s.Close() // twice is fine
	// The slot is free again; the XDP side needs the real program.
	if _, err := c.StartDump(api.DumpRequest{At: "both", Count: 1, Duration: time.Second}); err == nil ||
		!strings.Contains(err.Error(), "no dumps here") {
		t.Fatalf("after close: %v", err)
	}
	short, err := c.StartDump(api.DumpRequest{At: "worker", Count: 5, Duration: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.Next(context.Background()); err != io.EOF {
		t.Fatalf("past the duration: %v", err)
	}
	short.Close()
}

func TestOptionsValidate(t *testing.T) {
	ok := Options{ConntrackSize: 1 << 20, SNATPorts: DefaultSNATPorts}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{ConntrackSize: -5}, "--conntrack-size -5"},
		{Options{ConntrackSize: 0}, "--conntrack-size 0"},
		{Options{ConntrackSize: conntrack.MaxCapacity + 1}, "--conntrack-size"},
		{Options{ConntrackSize: 1 << 20, Queues: -1}, "--queues -1"},
		{Options{ConntrackSize: 1 << 20, Queues: bpf.MaxQueues + 1}, "--queues 65"},
		{Options{ConntrackSize: 1 << 20, SNATPorts: DefaultSNATPorts, CPUs: []int{0, 4096}}, "CPU 4096 does not exist"},
		{Options{ConntrackSize: 1 << 20, SNATPorts: [2]uint16{9, 8}}, "--snat-ports 9-8"},
		{Options{ConntrackSize: 1 << 20, SNATPorts: [2]uint16{40001, 40064}}, "--snat-ports 40001-40064: a full-NAT range must hold 64"},
		{Options{ConntrackSize: 1 << 20, SNATPorts: [2]uint16{40000, 40000}}, "every client"},
		{Options{ConntrackSize: 1 << 20, SNATPorts: DefaultSNATPorts, SNATAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, "loopback"},
		{Options{ConntrackSize: 1 << 20, SNATPorts: DefaultSNATPorts, MSSClamp: 100}, "--mss-clamp 100"},
		{Options{ConntrackSize: 1 << 20, SNATPorts: DefaultSNATPorts, WorkerFlows: -2}, "--worker-flows -2"},
		{Options{ConntrackSize: 1 << 20, SNATPorts: DefaultSNATPorts, WorkerFlows: dataplane.MaxWorkerFlows + 1}, "--worker-flows 8388609"},
	} {
		if err := c.o.validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
}

func TestWorkerFlows(t *testing.T) {
	for _, c := range []struct{ asked, size, workers, want int }{
		{AutoWorkerFlows, 1 << 20, 2, 1 << 19},
		{AutoWorkerFlows, 1 << 20, 1, 1 << 20},
		{AutoWorkerFlows, 256, 64, 4},
		{AutoWorkerFlows, 256, 1000, 1},
		{AutoWorkerFlows, conntrack.MaxCapacity, 1, dataplane.MaxWorkerFlows},
		{AutoWorkerFlows, 1 << 20, 0, 1 << 20},
		{0, 1 << 20, 2, 0},
		{5000, 1 << 20, 2, 5000},
	} {
		if got := workerFlows(c.asked, c.size, c.workers); got != c.want {
			t.Errorf("workerFlows(%d, %d, %d) = %d, want %d", c.asked, c.size, c.workers, got, c.want)
		}
	}
}

// no_socket is logged when it grows, once per check, not per packet.
func TestNoSocketWatch(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	w := newNoSocketWatch(zap.New(core))
	k := &countingVerdicts{}
	w.check(k) // the first read is the baseline
	k.n = 5
	w.check(k)
	w.check(k) // no new drops, no new line
	if logs.Len() != 1 || logs.All()[0].ContextMap()["packets"] != uint64(5) {
		t.Fatalf("logs %v", logs.All())
	}
}

type countingVerdicts struct {
	fakeKernel
	n uint64
}

func (k *countingVerdicts) VerdictStats() (map[string]bpf.Counter, error) {
	return map[string]bpf.Counter{bpf.VerdictNoSocket.String(): {Packets: k.n}}, nil
}

func TestCheckVIPsOnlyNewServices(t *testing.T) {
	c := newTestCore(t, "", Limits)
	if _, err := c.AddService(api.AddServiceRequest{VIP: "10.0.100.1:80"}); err != nil {
		t.Fatal(err)
	}
	// The host takes the VIP's address later: existing services still change.
	c.env.localAddrs = func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("10.0.100.1")} }
	if _, err := c.AddBackend(api.AddBackendRequest{ServiceID: 1, Address: "10.0.2.11"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddService(api.AddServiceRequest{VIP: "10.0.100.1:81"}); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("new service on a host address: %v", err)
	}
}

// Two instances given the same services and backends in another order
// (so with other ids) build the same Maglev tables, and show it.
func TestFingerprintAcrossInstances(t *testing.T) {
	a, b := newTestCore(t, "", Limits), newTestCore(t, "", Limits)
	add := func(c *testCore, vip string, backends ...string) uint32 {
		t.Helper()
		s, err := c.AddService(api.AddServiceRequest{VIP: vip, Proto: "tcp", Mode: "dsr-l2"})
		if err != nil {
			t.Fatal(err)
		}
		for _, be := range backends {
			if _, err := c.AddBackend(api.AddBackendRequest{ServiceID: s.ID, Address: be}); err != nil {
				t.Fatal(err)
			}
		}
		return s.ID
	}
	fingerprint := func(c *testCore, vip string) string {
		t.Helper()
		for _, s := range c.Services() {
			if s.VIP == vip {
				return s.Fingerprint
			}
		}
		t.Fatalf("no service %s", vip)
		return ""
	}
	add(a, "10.0.100.1:80", "10.0.2.11", "10.0.2.12", "10.0.2.13")
	add(a, "10.0.100.2:443", "10.0.2.11", "10.0.2.12")
	add(b, "10.0.100.2:443", "10.0.2.12", "10.0.2.11")
	add(b, "10.0.100.1:80", "10.0.2.13", "10.0.2.12", "10.0.2.11")
	for _, vip := range []string{"10.0.100.1:80", "10.0.100.2:443"} {
		fa, fb := fingerprint(a, vip), fingerprint(b, vip)
		if len(fa) != 16 || fa != fb {
			t.Errorf("%s: fingerprints %q and %q", vip, fa, fb)
		}
	}
	if fingerprint(a, "10.0.100.1:80") == fingerprint(a, "10.0.100.2:443") {
		t.Error("different tables, same fingerprint")
	}
	// Every flow's backend agrees, slot by slot.
	ta, tb := a.eng.Installed(), b.eng.Installed()
	if ta.Fingerprints()[1] != tb.Fingerprints()[2] {
		t.Error("compiled fingerprints differ")
	}
	// A backend drained on one instance only: the tables differ, and show it.
	var id uint32
	for _, be := range b.Services()[1].Backends {
		if be.Address == "10.0.2.12:80" {
			id = be.ID
		}
	}
	if err := b.DrainBackend(id); err != nil {
		t.Fatal(err)
	}
	if fingerprint(a, "10.0.100.1:80") == fingerprint(b, "10.0.100.1:80") {
		t.Error("a drained backend did not change the fingerprint")
	}
}
