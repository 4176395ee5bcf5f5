package daemon

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/control/health"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

var (
	tVIP = netip.MustParseAddr("10.0.100.1")
	tB1  = netip.MustParseAddr("10.0.2.11")
	tB2  = netip.MustParseAddr("10.0.2.12")
	tB3  = netip.MustParseAddr("10.0.2.13")
)

func tablesState() *config.State {
	st := config.NewState()
	web, _ := st.AddService(tVIP, 80, ipproto.TCP, fwdmode.NAT, &config.HealthCheck{Type: "http", Port: 8080, Path: "/", Status: 200,
		IntervalMs: 1000, TimeoutMs: 500, Rise: 1, Fall: 1})
	st.AddBackend(web.ID, tB1, 0, 3)    // 1
	st.AddBackend(web.ID, tB2, 8000, 1) // 2
	st.AddBackend(web.ID, tB3, 0, 1)    // 3
	st.DrainBackend(3)
	dns, _ := st.AddService(tVIP, 53, ipproto.UDP, fwdmode.NAT, nil)
	st.AddBackend(dns.ID, tB1, 0, 1) // 4
	st.AddFirewallRule(config.FirewallRule{Network: netip.MustParsePrefix("198.51.100.0/24"), Proto: ipproto.TCP,
		SrcPorts: config.AnyPort, DstPorts: config.PortRange{From: 22, To: 22}})
	st.AddDosPolicy(config.DosPolicy{Proto: ipproto.TCP, Type: "syn", LimitPPS: 100, BlockSeconds: 30})
	return st
}

// buildTables is the pure translation; every rule of it in one table.
func TestBuildTables(t *testing.T) {
	mac := func(a netip.Addr) packet.MAC { b := a.As4(); return packet.MAC{2, 0, b[0], b[1], b[2], b[3]} }
	in := inputs{
		state:   tablesState(),
		healthy: func(id uint32) bool { return id != 2 },
		hop: func(a netip.Addr) Hop {
			if a == tB1 {
				return Hop{Problem: "no route"}
			}
			return Hop{MAC: mac(a)}
		},
		links:   links{upMAC: packet.MAC{1}, downMAC: packet.MAC{2}},
		fwSlots: map[uint32]uint32{1: 5}, dosSlots: map[uint32]uint32{1: 2},
	}
	tb := buildTables(in)
	ep := func(a netip.Addr, port uint16, p ipproto.Proto) bpf.Endpoint {
		return bpf.Endpoint{Addr: a, Port: port, Proto: p}
	}
	wantServices := map[bpf.Endpoint]uint32{ep(tVIP, 80, ipproto.TCP): 1, ep(tVIP, 53, ipproto.UDP): 2}
	wantBackends := map[bpf.Endpoint]uint32{ep(tB1, 80, ipproto.TCP): 1, ep(tB2, 8000, ipproto.TCP): 1,
		ep(tB3, 80, ipproto.TCP): 1, ep(tB1, 53, ipproto.UDP): 2}
	if !equalMaps(tb.services, wantServices) || !equalMaps(tb.backends, wantBackends) {
		t.Fatalf("endpoints %v %v", tb.services, tb.backends)
	}
	// Weight: configured, unless unresolved (1, 4), unhealthy (2) or drained (3).
	for _, c := range []struct {
		id     uint32
		weight uint32
		mac    packet.MAC
	}{{1, 0, packet.MAC{}}, {2, 0, mac(tB2)}, {3, 0, mac(tB3)}, {4, 0, packet.MAC{}}} {
		b := findBackend(tb, c.id)
		if b.Weight != c.weight || b.MAC != c.mac {
			t.Errorf("backend %d: weight %d mac %v, want %d %v", c.id, b.Weight, b.MAC, c.weight, c.mac)
		}
	}
	if tb.unresolved != 2 {
		t.Errorf("unresolved %d, want 2 (backend 1 in both services)", tb.unresolved)
	}
	if len(tb.hosts) != 2 || tb.hosts[tB2] != mac(tB2) {
		t.Errorf("filter-exempt hosts %v: only resolved backends", tb.hosts)
	}
	if tb.dataplane.UpstreamMAC != in.links.upMAC || tb.dataplane.BackendMAC != in.links.downMAC {
		t.Error("interface MACs")
	}
	if len(tb.firewall) != 1 || tb.firewall[0].Slot != 5 || tb.firewall[0].DstFrom != 22 || tb.firewall[0].Proto != ipproto.TCP {
		t.Errorf("firewall %+v", tb.firewall)
	}
	if len(tb.dos) != 1 || tb.dos[0].Slot != 2 || tb.dos[0].FlagsMask != 0x12 || tb.dos[0].Block != 30*time.Second {
		t.Errorf("dos %+v", tb.dos)
	}
	// Probes: the web service's three backends, on the check's port.
	if len(tb.probes) != 3 || tb.probes[1] != (health.Target{ID: 2, Addr: netip.AddrPortFrom(tB2, 8080), Check: tb.probes[1].Check}) {
		t.Errorf("probes %+v", tb.probes)
	}

	// All healthy and resolved: configured weights, the drained one 0.
	in.healthy = func(uint32) bool { return true }
	in.hop = func(a netip.Addr) Hop { return Hop{MAC: mac(a)} }
	tb = buildTables(in)
	for id, w := range map[uint32]uint32{1: 3, 2: 1, 3: 0, 4: 1} {
		if b := findBackend(tb, id); b.Weight != w {
			t.Errorf("backend %d weight %d, want %d", id, b.Weight, w)
		}
	}
}

func findBackend(tb tables, id uint32) (b struct {
	Weight uint32
	MAC    packet.MAC
}) {
	for _, s := range tb.dataplane.Services {
		for _, x := range s.Backends {
			if x.ID == id {
				b.Weight, b.MAC = x.Weight, x.MAC
			}
		}
	}
	return b
}

func equalMaps[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Bug 2 of issue 9: a limit is enforced at the API with a 409 naming it,
// and nothing is saved.
func TestLimitIs409ThroughTheAPI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	lim := Limits
	lim.Services = 2
	c := newTestCore(t, path, lim)
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- api.Serve(ctx, l, api.NewHandler(c, zap.NewNop())) }()
	defer func() { cancel(); <-done }()
	cl := api.NewClient(sock)
	for _, vip := range []string{"10.0.100.1:80", "10.0.100.1:81"} {
		if _, err := cl.AddService(api.AddServiceRequest{VIP: vip, Proto: "tcp"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = cl.AddService(api.AddServiceRequest{VIP: "10.0.100.1:82", Proto: "tcp"})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != 409 || !strings.Contains(se.Message, "at most 2 services (MAX_SERVICES)") {
		t.Fatalf("third service: %v", err)
	}
	if n := len(c.store.State().Services); n != 2 {
		t.Fatalf("%d services saved", n)
	}
}

// DSR backends' replies never come to the load balancer: their endpoints
// are not steered; every VIP is listed once for ICMP; modes and link
// properties reach the dataplane.
func TestBuildTablesModes(t *testing.T) {
	st := config.NewState()
	dsr, _ := st.AddService(tVIP, 80, ipproto.TCP, fwdmode.DSRIPIP, nil)
	st.AddBackend(dsr.ID, tB1, 0, 1)
	fn, _ := st.AddService(tVIP, 443, ipproto.TCP, fwdmode.FullNAT, nil)
	st.AddBackend(fn.ID, tB2, 0, 1)
	other := netip.MustParseAddr("10.0.100.2")
	st.AddService(other, 53, ipproto.UDP, fwdmode.DSRL2, nil)
	l := links{upMTU: 1500, downMTU: 1400, downAddr: netip.MustParseAddr("10.0.2.1"), mssClamp: 1300}
	tb := buildTables(inputs{state: st, healthy: func(uint32) bool { return true },
		hop: func(netip.Addr) Hop { return Hop{MAC: packet.MAC{9}} }, links: l})
	if _, ok := tb.backends[bpf.Endpoint{Addr: tB1, Port: 80, Proto: ipproto.TCP}]; ok {
		t.Error("a DSR backend's replies are steered")
	}
	if _, ok := tb.backends[bpf.Endpoint{Addr: tB2, Port: 443, Proto: ipproto.TCP}]; !ok {
		t.Error("a full-NAT backend's replies are not steered")
	}
	if len(tb.vips) != 2 || tb.vips[0] != tVIP || tb.vips[1] != other {
		t.Errorf("vips %v", tb.vips)
	}
	dp := tb.dataplane
	if dp.Services[0].Mode != fwdmode.DSRIPIP || dp.Services[1].Mode != fwdmode.FullNAT || dp.BackendMTU != 1400 ||
		dp.BackendAddr != l.downAddr || dp.MSSClamp != 1300 {
		t.Errorf("dataplane config %+v", dp)
	}
}

func TestFullNATNeedsSNATAddresses(t *testing.T) {
	c := newTestCore(t, "", Limits)
	c.env.snat4, c.env.snat6 = false, true
	_, err := c.AddService(api.AddServiceRequest{VIP: "10.0.100.1:80", Mode: "fullnat"})
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "no IPv4 SNAT address (run --snat-addr)") {
		t.Fatalf("fullnat without SNAT addresses: %v", err)
	}
	if _, err := c.AddService(api.AddServiceRequest{VIP: "[2001:db8::1]:80", Mode: "fullnat"}); err != nil {
		t.Fatalf("IPv6 fullnat with an IPv6 SNAT address: %v", err)
	}
	c6 := newTestCore(t, "", Limits)
	c6.env.snat4, c6.env.snat6 = true, false
	_, err = c6.AddService(api.AddServiceRequest{VIP: "[2001:db8::1]:81", Mode: "fullnat"})
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "no IPv6 SNAT address") {
		t.Fatalf("IPv6 fullnat without an IPv6 SNAT address: %v", err)
	}
	if _, err := c.AddService(api.AddServiceRequest{VIP: "10.0.100.1:80", Mode: "DSR-L2"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AddBackend(api.AddBackendRequest{ServiceID: 2, Address: "10.0.2.11:8080"})
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "cannot map ports") {
		t.Fatalf("a DSR backend on another port: %v", err)
	}
	if s := c.Services(); s[1].Mode != "dsr-l2" {
		t.Fatalf("mode %q", s[0].Mode)
	}
	if _, err := c.AddService(api.AddServiceRequest{VIP: "10.0.100.1:81", Mode: "dsr"}); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("unknown mode: %v", err)
	}
}

func TestSNATRange(t *testing.T) {
	def := [2]uint16{32768, 60999}
	for _, c := range []struct {
		name   string
		given  [2]uint16
		local  bool
		eph    [2]uint16
		want   [2]uint16
		errHas string
	}{
		{"default, not local", [2]uint16{}, false, def, DefaultSNATPorts, ""},
		{"default, local: the larger span outside", [2]uint16{}, true, def, [2]uint16{1024, 32767}, ""},
		{"default, local, ephemeral low", [2]uint16{}, true, [2]uint16{1024, 40000}, [2]uint16{40001, 65535}, ""},
		{"default, local, ephemeral to the top", [2]uint16{}, true, [2]uint16{50000, 65535}, [2]uint16{1024, 49999}, ""},
		{"default, local, ephemeral everything", [2]uint16{}, true, [2]uint16{1024, 65535}, [2]uint16{}, "narrow ip_local_port_range"},
		{"given, local, leaves some", [2]uint16{40000, 65535}, true, def, [2]uint16{40000, 65535}, ""},
		{"given, local, covers all", [2]uint16{1024, 65535}, true, def, [2]uint16{}, "--snat-ports 61000-65535"},
		{"given, not local, covers all", [2]uint16{1024, 65535}, false, def, [2]uint16{1024, 65535}, ""},
		{"default, local, ephemeral leaves 35 ports", [2]uint16{}, true, [2]uint16{1024, 65500}, [2]uint16{}, "leave too few"},
		{"default, local, ephemeral leaves 200 ports", [2]uint16{}, true, [2]uint16{1024, 65335}, [2]uint16{65336, 65535}, ""},
	} {
		got, err := snatRange(c.given, c.local, c.eph)
		if c.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("%s: %v %v, want error with %q", c.name, got, err, c.errHas)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %v %v, want %v", c.name, got, err, c.want)
		}
	}
}
