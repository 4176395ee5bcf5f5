package daemon

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/control/health"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// fakeKernel keeps the maps as the XDP program would and counts the
// writes of each one. fail makes the named setter fail once; block makes
// SetServices wait on a channel (an apply that takes long).
type fakeKernel struct {
	mu       sync.Mutex
	services map[bpf.Endpoint]uint32
	backends map[bpf.Endpoint]uint32
	hosts    map[netip.Addr][6]byte
	local    []netip.Addr
	vips     []netip.Addr
	firewall []bpf.FirewallRule
	dos      []bpf.DosPolicy
	resets   []uint32
	writes   map[string]int
	fail     string
	dosBlock []bpf.Blocked
	testRuns [][]byte
	action   uint32
	block    chan struct{} // SetServices waits for it to close...
	blocked  chan struct{} // ...after saying so here
}

func newFakeKernel() *fakeKernel { return &fakeKernel{writes: map[string]int{}} }

func (k *fakeKernel) set(name string, apply func()) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail == name {
		k.fail = ""
		return errors.New("injected failure of " + name)
	}
	k.writes[name]++
	apply()
	return nil
}

func (k *fakeKernel) SetServices(m map[bpf.Endpoint]uint32) error {
	if k.block != nil {
		k.blocked <- struct{}{}
		<-k.block
	}
	return k.set("services", func() { k.services = maps.Clone(m) })
}
func (k *fakeKernel) SetBackends(m map[bpf.Endpoint]uint32) error {
	return k.set("backends", func() { k.backends = maps.Clone(m) })
}
func (k *fakeKernel) SetBackendHosts(m map[netip.Addr][6]byte) error {
	return k.set("hosts", func() { k.hosts = maps.Clone(m) })
}
func (k *fakeKernel) SetLocalAddrs(a []netip.Addr) error {
	return k.set("local", func() { k.local = slices.Clone(a) })
}
func (k *fakeKernel) SetVIPs(a []netip.Addr) error {
	return k.set("vips", func() { k.vips = slices.Clone(a) })
}
func (k *fakeKernel) SetFirewall(r []bpf.FirewallRule) error {
	return k.set("firewall", func() { k.firewall = slices.Clone(r) })
}
func (k *fakeKernel) SetDosPolicies(p []bpf.DosPolicy) error {
	return k.set("dos", func() { k.dos = slices.Clone(p) })
}
func (k *fakeKernel) ResetFirewallDrops(s uint32) error {
	return k.set("fwreset", func() { k.resets = append(k.resets, s) })
}
func (k *fakeKernel) ResetDosDrops(s uint32) error { return k.set("dosreset", func() {}) }
func (k *fakeKernel) FirewallDrops() (map[uint32]bpf.Counter, error) {
	return map[uint32]bpf.Counter{0: {Packets: 7, Bytes: 700}}, nil
}
func (k *fakeKernel) DosDrops() (map[uint32]bpf.Counter, error) { return map[uint32]bpf.Counter{}, nil }
func (k *fakeKernel) DosBlocked() ([]bpf.Blocked, error)        { return k.dosBlock, nil }
func (k *fakeKernel) TestRun(frame []byte, ifindex int) (uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.testRuns = append(k.testRuns, frame)
	return k.action, nil
}
func (k *fakeKernel) ProtoStats() (map[string]bpf.Counter, error) {
	return map[string]bpf.Counter{"tcp": {Packets: 1}}, nil
}
func (k *fakeKernel) VerdictStats() (map[string]bpf.Counter, error) {
	return map[string]bpf.Counter{"fw_drop": {Packets: 7}}, nil
}
func (k *fakeKernel) StartDump(bpf.DumpFilter) (*bpf.Dumper, error) {
	return nil, errors.New("no dumps here")
}

func (k *fakeKernel) count(name string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.writes[name]
}

// fakeProber reports what the test sets.
type fakeProber struct {
	mu      sync.Mutex
	status  map[uint32]health.Status
	targets []health.Target
	syncs   int
}

func (p *fakeProber) Sync(t []health.Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.targets, p.syncs = t, p.syncs+1
}
func (p *fakeProber) Status(id uint32) (health.Status, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.status[id]
	return s, ok
}
func (p *fakeProber) setHealthy(id uint32, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status[id] = health.Status{Healthy: ok}
}

// fakeHops resolves every backend to a MAC made of its address, unless told
// otherwise.
type fakeHops struct {
	mu      sync.Mutex
	missing map[netip.Addr]string
}

func (h *fakeHops) Backend(a netip.Addr) Hop {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.missing[a]; ok {
		return Hop{Problem: p}
	}
	b := a.As4()
	return Hop{MAC: packet.MAC{2, 0, b[0], b[1], b[2], b[3]}}
}
func (h *fakeHops) Client() dataplane.ClientHops { return dataplane.ClientHops{} }
func (h *fakeHops) set(a netip.Addr, problem string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if problem == "" {
		delete(h.missing, a)
	} else {
		h.missing[a] = problem
	}
}

type testCore struct {
	*core
	kern   *fakeKernel
	probes *fakeProber
	hops   *fakeHops
}

// newTestCore is a core over a real store (at path; "" in memory) and a
// real dataplane engine, with fake kernel, prober and next hops.
func newTestCore(t testing.TB, path string, lim config.Limits) *testCore {
	t.Helper()
	st, err := config.Open(path, lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tc := &testCore{kern: newFakeKernel(), probes: &fakeProber{status: map[uint32]health.Status{}},
		hops: &fakeHops{missing: map[netip.Addr]string{}}}
	tc.core = &core{log: zap.NewNop(), store: st, kern: tc.kern, probes: tc.probes, hops: tc.hops,
		eng: dataplane.NewEngine(conntrack.New(1024, conntrack.DefaultTimeouts), zap.NewNop()),
		env: env{links: links{upMAC: packet.MAC{2, 1}, downMAC: packet.MAC{2, 2}, downAddr: netip.MustParseAddr("10.0.2.1")},
			snat4:      true,
			snat6:      true,
			localAddrs: func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("10.0.1.1")} }}}
	if err := tc.refresh(); err != nil {
		t.Fatal(err)
	}
	return tc
}
