package daemon

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// addLab adds the service and backends the e2e lab uses: VIP:80/tcp on
// backends 1 and 2, and returns the backends.
func addLab(t *testing.T, c *testCore) []api.Backend {
	t.Helper()
	if _, err := c.AddService(api.AddServiceRequest{VIP: "10.0.100.1:80", Proto: "tcp"}); err != nil {
		t.Fatal(err)
	}
	var bs []api.Backend
	for _, a := range []string{"10.0.2.11", "10.0.2.12"} {
		b, err := c.AddBackend(api.AddBackendRequest{ServiceID: 1, Address: a})
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	return bs
}

func weights(c *testCore) map[uint32]uint32 {
	w := map[uint32]uint32{}
	for _, s := range c.last.t.dataplane.Services {
		for _, b := range s.Backends {
			w[b.ID] = b.Weight
		}
	}
	return w
}

// One apply path: an API change, a health flip and a next-hop change all
// reach the dataplane, and each step runs only when it has something new.
func TestEveryTriggerAppliesOnlyWhatChanged(t *testing.T) {
	c := newTestCore(t, filepath.Join(t.TempDir(), "state.json"), Limits)
	addLab(t, c)
	if w := weights(c); w[1] != 1 || w[2] != 1 {
		t.Fatalf("weights %v", w)
	}
	if c.kern.services[bpf.Endpoint{Addr: netip.MustParseAddr("10.0.100.1"), Port: 80, Proto: ipproto.TCP}] != 1 ||
		len(c.kern.backends) != 2 || len(c.kern.hosts) != 2 {
		t.Fatalf("kernel maps %+v %+v %+v", c.kern.services, c.kern.backends, c.kern.hosts)
	}
	before := map[string]int{}
	for _, k := range []string{"services", "backends", "hosts", "firewall", "dos"} {
		before[k] = c.kern.count(k)
	}
	compiled := c.eng.Installed()

	// Nothing changed: no step runs.
	if err := c.refresh(); err != nil {
		t.Fatal(err)
	}
	if c.eng.Installed() != compiled {
		t.Fatal("an unchanged refresh recompiled the dataplane table")
	}
	// A health flip changes weights only: the dataplane, no kernel map.
	c.probes.setHealthy(1, false)
	if err := c.refresh(); err != nil {
		t.Fatal(err)
	}
	if w := weights(c); w[1] != 0 || w[2] != 1 {
		t.Fatalf("unhealthy backend weight: %v", w)
	}
	if c.eng.Installed() == compiled {
		t.Fatal("the health flip did not reach the dataplane")
	}
	// A lost next hop takes the backend out of new flows and out of the
	// filters' exemption.
	c.probes.setHealthy(1, true)
	c.hops.set(netip.MustParseAddr("10.0.2.12"), "no route")
	if err := c.refresh(); err != nil {
		t.Fatal(err)
	}
	if w := weights(c); w[1] != 1 || w[2] != 0 {
		t.Fatalf("unresolved backend weight: %v", w)
	}
	if _, ok := c.kern.hosts[netip.MustParseAddr("10.0.2.12")]; ok {
		t.Fatal("a backend without a next hop is still exempt from the filters")
	}
	for _, k := range []string{"services", "backends", "firewall", "dos"} {
		if c.kern.count(k) != before[k] {
			t.Errorf("%s map rewritten by a change that did not touch it", k)
		}
	}
	// A firewall change touches the firewall only.
	if _, err := c.AddFirewallRule(api.AddFirewallRuleRequest{Network: "198.51.100.0/24", Proto: "TCP"}); err != nil {
		t.Fatal(err)
	}
	if c.kern.count("firewall") != before["firewall"]+1 || c.kern.count("services") != before["services"] {
		t.Fatalf("writes %v", c.kern.writes)
	}
	if len(c.kern.firewall) != 1 || c.kern.firewall[0].Proto != ipproto.TCP {
		t.Fatalf("firewall %+v", c.kern.firewall)
	}
}

// Bug 4 of issue 9: a backend without a next hop gets no new flows and
// backend get says why.
func TestUnresolvedBackendShown(t *testing.T) {
	c := newTestCore(t, "", Limits)
	c.hops.set(netip.MustParseAddr("10.0.2.12"), "10.0.2.12 does not answer ARP")
	addLab(t, c)
	bs := c.Services()[0].Backends
	if !bs[0].NewFlows || bs[0].NextHop != "resolved" || bs[0].MAC == "" {
		t.Fatalf("resolved backend: %+v", bs[0])
	}
	if bs[1].NewFlows || bs[1].MAC != "" || bs[1].NextHop != "unresolved: 10.0.2.12 does not answer ARP" {
		t.Fatalf("unresolved backend: %+v", bs[1])
	}
}

// Bug 14 of issue 9: a change is either saved and applied, or neither,
// and the answer says which. Here the XDP map write fails mid-apply.
func TestFailedApplyIsUndone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	c := newTestCore(t, path, Limits)
	addLab(t, c)
	file, _ := os.ReadFile(path)
	state, plan, compiled := c.store.State(), c.last, c.eng.Installed()
	kernServices := c.kern.services

	c.kern.fail = "backends" // after the dataplane and the services map were written
	_, err := c.AddBackend(api.AddBackendRequest{ServiceID: 1, Address: "10.0.2.13"})
	if err == nil || !strings.Contains(err.Error(), "nothing saved or applied") {
		t.Fatalf("failed apply answered %v", err)
	}
	if now, _ := os.ReadFile(path); string(now) != string(file) {
		t.Fatal("the state file kept the change")
	}
	if c.store.State() != state || c.last != plan {
		t.Fatal("the state kept the change")
	}
	if c.eng.Installed() != compiled {
		t.Fatal("the dataplane kept the change")
	}
	if !reflect.DeepEqual(c.kern.services, kernServices) || len(c.kern.backends) != 2 {
		t.Fatalf("the kernel maps kept the change: %v %v", c.kern.services, c.kern.backends)
	}
	// The next change goes through.
	if _, err := c.AddBackend(api.AddBackendRequest{ServiceID: 1, Address: "10.0.2.13"}); err != nil {
		t.Fatal(err)
	}
	if len(c.kern.backends) != 3 || len(c.Services()[0].Backends) != 3 {
		t.Fatal("the change after a failed one was not applied")
	}
}

// Bug 2 of issue 9: reads never wait for an apply in progress.
func TestReadsDoNotWaitForApply(t *testing.T) {
	c := newTestCore(t, "", Limits)
	addLab(t, c)
	c.kern.block, c.kern.blocked = make(chan struct{}), make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, err := c.AddService(api.AddServiceRequest{VIP: "10.0.100.1:443", Proto: "tcp"})
		done <- err
	}()
	<-c.kern.blocked // the apply holds the apply lock, stuck in a kernel step
	read := make(chan int, 1)
	go func() {
		c.FirewallRules()
		read <- len(c.Services())
	}()
	select {
	case n := <-read:
		if n != 1 {
			t.Fatalf("a read during the apply saw %d services, want the last applied 1", n)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a read waited for the apply")
	}
	close(c.kern.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(c.Services()); n != 2 {
		t.Fatalf("after the apply: %d services", n)
	}
}

// Bug 10 of issue 9: a VIP that is one of the host's own addresses is refused.
func TestVIPIsNotAHostAddress(t *testing.T) {
	c := newTestCore(t, "", Limits)
	_, err := c.AddService(api.AddServiceRequest{VIP: "10.0.1.1:80", Proto: "tcp"})
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "address of this host") {
		t.Fatalf("VIP on a host address: %v", err)
	}
	if len(c.Services()) != 0 {
		t.Fatal("refused service was added")
	}
}

// Bug 1 of issue 9, through the API: "TCP" is tcp; protocols are parsed
// once at the edge.
func TestProtocolParsedAtTheEdge(t *testing.T) {
	c := newTestCore(t, "", Limits)
	if _, err := c.AddService(api.AddServiceRequest{VIP: "10.0.100.1:80", Proto: "tcp"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.AddService(api.AddServiceRequest{VIP: "10.0.100.1:80", Proto: "TCP"})
	if !errors.Is(err, config.ErrExists) {
		t.Fatalf("TCP next to tcp: %v", err)
	}
	_, err = c.AddService(api.AddServiceRequest{VIP: "10.0.100.1:80", Proto: "sctp"})
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("sctp: %v", err)
	}
	s, err := c.AddService(api.AddServiceRequest{VIP: "10.0.100.1:53", Proto: "Udp"})
	if err != nil || s.Proto != "udp" {
		t.Fatalf("Udp: %+v %v", s, err)
	}
	if _, err := c.AddDosPolicy(api.AddDosPolicyRequest{Proto: "TCP", Type: "SYN", LimitPPS: 5, BlockSeconds: 5}); err != nil {
		t.Fatal(err)
	}
	if ps, _ := c.DosPolicies(); ps[0].Proto != "tcp" || ps[0].Type != "syn" {
		t.Fatalf("policy %+v", ps[0])
	}
}

func TestAssignSlots(t *testing.T) {
	s, fresh, err := assignSlots(nil, []uint32{10, 11, 12}, 3)
	if err != nil || len(fresh) != 3 || s[11] != 1 {
		t.Fatalf("%v %v %v", s, fresh, err)
	}
	next, fresh, err := assignSlots(s, []uint32{10, 12, 13}, 3) // 11 deleted, 13 takes its slot
	if err != nil || !reflect.DeepEqual(fresh, []uint32{1}) || next[13] != 1 || next[12] != 2 || next[10] != 0 {
		t.Fatalf("%v %v %v", next, fresh, err)
	}
	if s[11] != 1 {
		t.Fatal("assignSlots changed its input")
	}
	if _, _, err := assignSlots(next, []uint32{10, 12, 13, 14}, 3); err == nil {
		t.Fatal("more ids than slots accepted")
	}
}

// The store refuses states the XDP program cannot hold: the limits are the
// program's, checked against its map specs in bpf.
func TestLimitsAreTheProgramsLimits(t *testing.T) {
	if Limits.Services != bpf.MaxServices || Limits.Backends != bpf.MaxBackends ||
		Limits.BackendsPerService != bpf.MaxBackendsPerService || Limits.FirewallRules != bpf.MaxFirewallRules ||
		Limits.RulesPerPrefix != bpf.MaxRulesPerPrefix || Limits.DosPolicies != bpf.MaxDosPolicies {
		t.Fatalf("daemon limits %+v differ from the program's", Limits)
	}
}
