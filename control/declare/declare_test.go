package declare

import (
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

var limits = config.Limits{Services: 100, Backends: 1000, BackendsPerService: 100, FirewallRules: 100,
	RulesPerPrefix: 16, DosPolicies: 16}

// sample is a state with one of everything: both families, every mode
// field, a drained backend, rules and policies.
func sample(t *testing.T) *config.State {
	t.Helper()
	st := config.NewState()
	web, err := st.AddService(netip.MustParseAddr("10.0.100.1"), 80, ipproto.TCP, fwdmode.NAT,
		&config.HealthCheck{Type: "http", Path: "/healthz", Status: 204, Payload: "ping", IntervalMs: 500, TimeoutMs: 200, Rise: 1, Fall: 2})
	if err != nil {
		t.Fatal(err)
	}
	st.AddBackend(web.ID, netip.MustParseAddr("10.0.2.11"), 0, 2)
	st.AddBackend(web.ID, netip.MustParseAddr("10.0.2.12"), 8080, 1)
	st.DrainBackend(2)
	v6, err := st.AddService(netip.MustParseAddr("2001:db8:100::1"), 443, ipproto.UDP, fwdmode.FullNAT, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.AddBackend(v6.ID, netip.MustParseAddr("2001:db8:2::11"), 8443, 3)
	st.FirewallRules = []config.FirewallRule{
		{ID: 1, Network: netip.MustParsePrefix("192.0.2.0/24"), Proto: ipproto.UDP, SrcPorts: config.AnyPort, DstPorts: config.PortRange{From: 53, To: 53}},
		{ID: 2, Network: netip.MustParsePrefix("2001:db8:bad::/48"), Proto: ipproto.ICMPv6, SrcPorts: config.AnyPort, DstPorts: config.AnyPort},
	}
	st.DosPolicies = []config.DosPolicy{{ID: 1, Proto: ipproto.TCP, Type: "syn", LimitPPS: 100, BlockSeconds: 30}}
	st.NextRuleID, st.NextPolicyID = 3, 2
	if err := st.Validate(limits); err != nil {
		t.Fatal(err)
	}
	return st
}

// export -> parse -> apply onto the same state changes nothing, and
// exports the same bytes again.
func TestRoundTrip(t *testing.T) {
	st := sample(t)
	y, err := Marshal(FromState(st))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(strings.NewReader(string(y)))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	next, err := Desired(st, d)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(next, st) {
		t.Fatalf("applying the export changed the state:\n%+v\n%+v", next, st)
	}
	if ch := Diff(st, next); len(ch) != 0 {
		t.Fatalf("changes %v", ch)
	}
	again, _ := Marshal(FromState(next))
	if string(again) != string(y) {
		t.Fatalf("export differs:\n%s\n%s", y, again)
	}
	// From scratch (a new daemon): the same content, ids from 1.
	fresh, err := Desired(config.NewState(), d)
	if err != nil {
		t.Fatal(err)
	}
	if y2, _ := Marshal(FromState(fresh)); string(y2) != string(y) {
		t.Fatalf("applied to an empty state:\n%s", y2)
	}
}

func TestDesiredKeepsIDs(t *testing.T) {
	st := sample(t)
	d := FromState(st)
	// Drop backend 10.0.2.11, add 10.0.2.13, reweigh 10.0.2.12 and
	// undrain it, remove the IPv6 service, add one, change the policy's
	// limit, drop the first rule.
	d.Services[0].Backends = []Backend{{Address: "10.0.2.12:8080", Weight: 5}, {Address: "10.0.2.13"}}
	d.Services[1] = Service{VIP: "10.0.100.2:53", Proto: "UDP", Backends: []Backend{{Address: "10.0.2.11"}}}
	d.DoS[0].LimitPPS = 200
	d.Firewall = d.Firewall[1:]
	next, err := Desired(st, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Validate(limits); err != nil {
		t.Fatal(err)
	}
	web := next.Services[0]
	if web.ID != 1 || web.Backends[0].ID != 2 || web.Backends[0].Weight != 5 || web.Backends[0].Drained ||
		web.Backends[1].ID != 4 || web.Backends[1].Port != 80 || web.Backends[1].Weight != 1 {
		t.Fatalf("web %+v", web)
	}
	if dns := next.Services[1]; dns.ID != 3 || dns.Proto != ipproto.UDP || dns.Mode != fwdmode.NAT || dns.Backends[0].ID != 5 {
		t.Fatalf("new service %+v", dns)
	}
	if next.DosPolicies[0].ID != 1 || next.DosPolicies[0].LimitPPS != 200 || len(next.FirewallRules) != 1 || next.FirewallRules[0].ID != 2 {
		t.Fatalf("filters %+v %+v", next.FirewallRules, next.DosPolicies)
	}
	got := []string{}
	for _, c := range Diff(st, next) {
		got = append(got, c.String())
	}
	want := []string{
		"- service [2001:db8:100::1]:443/udp (1 backends)",
		"- backend 10.0.2.11:80 of 10.0.100.1:80/tcp",
		"~ backend 10.0.2.12:8080 of 10.0.100.1:80/tcp: weight 1 -> 5",
		"~ backend 10.0.2.12:8080 of 10.0.100.1:80/tcp: takes new flows again",
		"+ backend 10.0.2.13:80 of 10.0.100.1:80/tcp weight 1",
		"+ service 10.0.100.2:53/udp nat, health none, 1 backends",
		"+ backend 10.0.2.11:53 of 10.0.100.2:53/udp weight 1",
		"- firewall deny udp from 192.0.2.0/24 src ports any dst ports 53",
		"~ dos tcp syn over 100 packets/s blocks for 30s -> dos tcp syn over 200 packets/s blocks for 30s",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("diff\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r := Removed(st, next); !reflect.DeepEqual(r, map[uint32][]uint32{1: {1}, 2: {3}}) {
		t.Fatalf("removed %v", r)
	}
}

func TestBadDocuments(t *testing.T) {
	for _, c := range []struct{ name, doc, want string }{
		{"typo", "services:\n  - vip: 10.0.100.1:80\n    backend: []\n", "field backend not found"},
		{"weight typo", "services:\n  - vip: 10.0.100.1:80\n    backends: [{address: 10.0.2.11, wieght: 2}]\n", "field wieght not found"},
		{"empty", "", "empty document"},
		{"two documents", "services: []\n---\nservices: []\n", "more than one"},
		{"not yaml", "services: [", "yaml"},
		{"bad vip", "services:\n  - vip: 10.0.100.300:80\n    backends: []\n", "services[0]: invalid"},
		{"ipv6 without brackets", "services:\n  - vip: 2001:db8::1:80\n    backends: []\n", "[IPv6]:PORT"},
		{"duplicate service", "services:\n  - vip: 10.0.100.1:80\n    backends: []\n  - vip: 10.0.100.1:80\n    proto: TCP\n    backends: []\n",
			"services[1]: 10.0.100.1:80/tcp is services[0] too"},
		{"duplicate backend", "services:\n  - vip: 10.0.100.1:80\n    backends: [{address: 10.0.2.11}, {address: '10.0.2.11:80'}]\n",
			"services[0].backends[1]: 10.0.2.11:80 is backends[0] too"},
		{"weight in address", "services:\n  - vip: 10.0.100.1:80\n    backends: [{address: 10.0.2.11@2}]\n", "weight:, not @"},
		{"bad mode", "services:\n  - vip: 10.0.100.1:80\n    mode: dsr\n    backends: []\n", "services[0]"},
		{"bad interval", "services:\n  - vip: 10.0.100.1:80\n    health: {type: tcp, interval: 2}\n    backends: []\n", "interval \"2\""},
		{"bad network", "services: []\nfirewall: [{network: 10.0.0.0}]\n", "firewall[0]: network"},
		{"bad block", "services: []\ndos: [{proto: udp, limit_pps: 5, block: -1s}]\n", "dos[0]: block"},
		{"negative weight", "services:\n  - vip: 10.0.100.1:80\n    backends: [{address: 10.0.2.11, weight: -1}]\n", "yaml"},
	} {
		d, err := Parse(strings.NewReader(c.doc))
		if err == nil {
			_, err = Desired(config.NewState(), d)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// The example in docs/examples is a valid document.
func TestExample(t *testing.T) {
	f, err := os.Open("../../docs/examples/lb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Desired(config.NewState(), d)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Validate(limits); err != nil {
		t.Fatal(err)
	}
	web := st.Services[0]
	if len(st.Services) != 3 || web.Health.Path != "/healthz" || !web.Backends[2].Drained || web.Backends[0].Weight != 2 ||
		web.Backends[0].Port != 80 || st.Services[2].VIP.Is4() || len(st.FirewallRules) != 2 || len(st.DosPolicies) != 1 {
		t.Fatalf("%+v", st.Services)
	}
}
