package daemon

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/control/health"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
)

// core is the daemon's control logic without the machine: the desired
// state, the one apply path that every trigger goes through (API change,
// health flip, next-hop refresh), and the API's views. It needs no root:
// tests give it a fake Kernel, Prober and NextHops.
type core struct {
	log    *zap.Logger
	store  *config.Store
	eng    *dataplane.Engine
	kern   Kernel
	probes Prober
	hops   NextHops
	env    env

	mu   sync.Mutex // one apply at a time; readers never take it
	cur  installed  // what each step last applied successfully
	last *plan      // the last plan installed in full
	view atomic.Pointer[plan]
	// announcing is set once XDP is attached (a VIP is announced only when
	// this instance can serve it) and cleared by a graceful stop.
	announcing atomic.Bool
	speaker    atomic.Pointer[speaker] // nil: BGP not running
}

// speaker is a running Announcer and the settings it was started with.
type speaker struct {
	Announcer
	cfg *config.BGP
}

// links are the interfaces' properties the tables need.
type links struct {
	upMAC, downMAC packet.MAC
	upMTU, downMTU int
	downAddr       netip.Addr // the load balancer's addresses on the backend side
	downAddr6      netip.Addr
	mssClamp       uint16
}

// env is what the core knows of the machine.
type env struct {
	links
	// snat4 and snat6 say full-NAT services of a family can be served
	// (--snat-addr given with an address of that family).
	snat4, snat6 bool
	// localAddrs are the host's own addresses: a VIP must not be one.
	localAddrs func() []netip.Addr
	// sockets report the AF_XDP sockets' counters for Stats.
	sockets func() []api.SocketStats
	// ifName names an ifindex, and the two sides, for dumps.
	ifName           func(int) string
	upName, downName string
	upIndex          int    // the upstream interface, for a trace's test run
	wakeRefresh      func() // asks the refresh loop to resolve new next hops now
	dumping          atomic.Bool
	// startBGP starts a speaker with the state's BGP settings.
	startBGP func(*config.BGP) (Announcer, error)
}

// plan is one complete, checked configuration: the state, its tables and
// the compiled dataplane table. Immutable once made; readers use the last
// installed one.
type plan struct {
	state             *config.State
	t                 tables
	compiled          *dataplane.Compiled
	fwSlots, dosSlots map[uint32]uint32
	fwFresh, dosFresh []uint32 // slots that changed owner: counters to zero
	hops              map[netip.Addr]Hop
}

// installed is what each step last applied, so a step with nothing new
// skips itself and a failed apply can be undone step by step.
type installed struct {
	compiled          *dataplane.Compiled
	services          map[bpf.Endpoint]uint32
	backends          map[bpf.Endpoint]uint32
	hosts             map[netip.Addr][6]byte
	vips              []netip.Addr
	firewall          []bpf.FirewallRule
	dos               []bpf.DosPolicy
	probes            []health.Target
	probesSet, loaded bool
	announce          []netip.Addr
	announced         bool // announce was given to the running speaker
}

// makePlan computes the tables for st from the current health and next
// hops, and compiles the dataplane table unless it is unchanged. It changes
// nothing; an error means the dataplane would refuse st.
func (c *core) makePlan(st *config.State) (*plan, error) {
	var prevFw, prevDos map[uint32]uint32
	if c.last != nil {
		prevFw, prevDos = c.last.fwSlots, c.last.dosSlots
	}
	p := &plan{state: st, hops: map[netip.Addr]Hop{}}
	var err error
	if p.fwSlots, p.fwFresh, err = assignSlots(prevFw, ruleIDs(st), bpf.MaxFirewallRules); err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	if p.dosSlots, p.dosFresh, err = assignSlots(prevDos, policyIDs(st), bpf.MaxDosPolicies); err != nil {
		return nil, fmt.Errorf("dos: %w", err)
	}
	hop := func(a netip.Addr) Hop {
		h, ok := p.hops[a]
		if !ok {
			h = c.hops.Backend(a)
			p.hops[a] = h
		}
		return h
	}
	p.t = buildTables(inputs{state: st, healthy: c.healthy, hop: hop, client: c.hops.Client(),
		links: c.env.links, fwSlots: p.fwSlots, dosSlots: p.dosSlots})
	if c.last != nil && p.t.dataplane.Equal(&c.last.t.dataplane) {
		p.compiled = c.last.compiled
	} else if p.compiled, err = c.eng.Compile(p.t.dataplane); err != nil {
		return nil, err
	}
	return p, nil
}

func (c *core) healthy(id uint32) bool {
	st, ok := c.probes.Status(id)
	return !ok || st.Healthy
}

// install applies a plan step by step, dataplane first (a steered packet
// must find its service), each step skipped when it has nothing new.
func (c *core) install(p *plan) error {
	cur := &c.cur
	if p.compiled != cur.compiled {
		c.eng.Install(p.compiled)
		cur.compiled = p.compiled
	}
	if err := step(cur.loaded, &cur.services, p.t.services, maps.Equal, c.kern.SetServices); err != nil {
		return err
	}
	if err := step(cur.loaded, &cur.backends, p.t.backends, maps.Equal, c.kern.SetBackends); err != nil {
		return err
	}
	if err := step(cur.loaded, &cur.hosts, p.t.hosts, maps.Equal, c.kern.SetBackendHosts); err != nil {
		return err
	}
	if err := step(cur.loaded, &cur.vips, p.t.vips, slices.Equal, c.kern.SetVIPs); err != nil {
		return err
	}
	for _, s := range p.fwFresh {
		if err := c.kern.ResetFirewallDrops(s); err != nil {
			return err
		}
	}
	if err := step(cur.loaded, &cur.firewall, p.t.firewall, slices.Equal, c.kern.SetFirewall); err != nil {
		return err
	}
	for _, s := range p.dosFresh {
		if err := c.kern.ResetDosDrops(s); err != nil {
			return err
		}
	}
	if err := step(cur.loaded, &cur.dos, p.t.dos, slices.Equal, c.kern.SetDosPolicies); err != nil {
		return err
	}
	if !cur.probesSet || !slices.Equal(cur.probes, p.t.probes) {
		c.probes.Sync(p.t.probes)
		cur.probes, cur.probesSet = p.t.probes, true
	}
	// Last: a VIP is announced only once every table serves it.
	if err := c.syncBGP(p); err != nil {
		return err
	}
	cur.loaded = true
	c.last = p
	c.view.Store(p)
	return nil
}

// step applies want with set unless it equals what was applied last.
func step[T any](loaded bool, have *T, want T, equal func(T, T) bool, set func(T) error) error {
	if loaded && equal(*have, want) {
		return nil
	}
	if err := set(want); err != nil {
		return err
	}
	*have = want
	return nil
}

// change is the API's path: prepare the new state, have the dataplane
// compile it, save it, apply it. The answer is either "saved and applied"
// or an error after which neither the file nor the running tables changed.
func (c *core) change(fn func(*config.State) error) (*config.State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next, err := c.store.Prepare(fn)
	if err != nil {
		return nil, err
	}
	if err := c.checkVIPs(next); err != nil {
		return nil, err
	}
	p, err := c.makePlan(next)
	if err != nil {
		return nil, fmt.Errorf("refused by the dataplane; nothing saved: %w", err)
	}
	prev := c.store.State()
	if err := c.store.Commit(next); err != nil {
		return nil, fmt.Errorf("nothing saved or applied: %w", err)
	}
	if err := c.install(p); err != nil {
		// Put the file and the kernel back as they were.
		undo := c.store.Commit(prev)
		if c.last != nil {
			undo = errors.Join(undo, c.install(c.last))
		}
		if undo != nil {
			c.log.Error("undoing a failed change", zap.Error(undo))
			return nil, fmt.Errorf("could not apply (%v), and undoing it failed: %w", err, undo)
		}
		return nil, fmt.Errorf("nothing saved or applied: %w", err)
	}
	if p.t.unresolved > 0 && c.env.wakeRefresh != nil {
		c.env.wakeRefresh()
	}
	return next, nil
}

// refresh re-applies the current state after health or next hops changed.
func (c *core) refresh() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.makePlan(c.store.State())
	if err != nil {
		return err
	}
	return c.install(p)
}

// checkVIPs refuses a new VIP that is one of the host's own addresses (its
// traffic would be taken from the host's own listeners), and a full-NAT
// service on a daemon without SNAT addresses.
func (c *core) checkVIPs(next *config.State) error {
	for _, s := range next.Services {
		if have := c.env.snat4 && s.VIP.Is4() || c.env.snat6 && s.VIP.Is6(); s.Mode == fwdmode.FullNAT && !have {
			return fmt.Errorf("%w: service %s is fullnat, but the daemon has no %s SNAT address (run --snat-addr)",
				config.ErrInvalid, s.Name(), config.Family(s.VIP))
		}
	}
	if c.env.localAddrs == nil {
		return nil
	}
	old := map[uint32]bool{}
	for _, s := range c.store.State().Services {
		old[s.ID] = true
	}
	local := map[netip.Addr]bool{}
	for _, a := range c.env.localAddrs() {
		local[a] = true
	}
	for _, s := range next.Services {
		if !old[s.ID] && local[s.VIP] {
			return fmt.Errorf("%w: VIP %s is an address of this host; its traffic would no longer reach the host's own "+
				"listeners (a VIP need not be configured on any interface)", config.ErrInvalid, s.VIP)
		}
	}
	return nil
}

// setLinks replaces the interfaces' properties; true when they changed
// (the caller re-plans).
func (c *core) setLinks(l links) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.env.links == l {
		return false
	}
	c.env.links = l
	return true
}

// current is the last installed plan, for readers.
func (c *core) current() *plan {
	if p := c.view.Load(); p != nil {
		return p
	}
	return &plan{state: c.store.State(), hops: map[netip.Addr]Hop{}}
}
