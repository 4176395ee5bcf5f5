package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/control/health"
	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/xsk"
)

// Daemon is a running load balancer: the core plus the machine (XDP
// program, sockets, workers, servers, next-hop resolver).
type Daemon struct {
	log      *zap.Logger
	opts     Options
	up, down netlink.Interface
	oneArm   bool
	prog     *bpf.Program
	eng      *dataplane.Engine
	// snapshotDue: the flows were restored (or there was nothing to
	// restore), so the table is this run's to save at exit.
	snapshotDue bool
	// adopt: XDP programs (by ifindex) a restarting predecessor held, and
	// the processes holding them.
	adopt   map[int]uint32
	holders []int
	neigh   *netlink.Neighbours
	hops    *resolver
	sockets []queueSocket
	umems   []*xsk.UMEM // closed after the sockets
	workers []*dataplane.Worker
	werr    chan error
	store   *config.Store
	core    *core
	health  *health.Checker
	servers []*httpServer // API, metrics
	kick    chan struct{} // resolve next hops now
	// unreserve gives the kernel back the SNAT port range (nil: nothing reserved).
	unreserve func() error
}

// Limits are the XDP program's compiled limits, as the store enforces them.
var Limits = config.Limits{Services: bpf.MaxServices, Backends: bpf.MaxBackends,
	BackendsPerService: bpf.MaxBackendsPerService, FirewallRules: bpf.MaxFirewallRules,
	RulesPerPrefix: bpf.MaxRulesPerPrefix, DosPolicies: bpf.MaxDosPolicies}

// Run starts the load balancer and serves until ctx is cancelled, then
// detaches and releases everything. A start-up failure also releases
// whatever was set up.
func Run(ctx context.Context, o Options, log *zap.Logger) (err error) {
	d := &Daemon{log: log.Named("daemon"), opts: o, werr: make(chan error, 1), kick: make(chan struct{}, 1), adopt: map[int]uint32{}}
	defer func() { err = errors.Join(err, d.shutdown()) }()
	if err := d.start(); err != nil {
		return err
	}
	return d.serve(ctx)
}

func (d *Daemon) start() error {
	if err := d.opts.validate(); err != nil {
		return err
	}
	if err := api.CheckSocketPath(d.opts.APISocket); err != nil {
		return err
	}
	flags, err := config.Resolve(d.opts.Services)
	if err != nil {
		return err
	}
	// A bad file stops the start before anything is touched.
	configText, err := d.readConfig()
	if err != nil {
		return err
	}
	// Lock and read the state file first: a second daemon on it stops here,
	// naming the first. Nothing is written until the machine checks pass.
	if d.store, err = config.Open(d.opts.StatePath, Limits); err != nil {
		return err
	}
	if err := d.findInterfaces(); err != nil {
		return err
	}
	queues, err := planQueues(d.nic(d.up), d.nic(d.down), d.oneArm, d.opts.Queues)
	if err != nil {
		return err
	}
	if d.prog, err = bpf.Load(); err != nil {
		return err
	}
	for ifindex, progID := range d.adopt {
		if _, err := d.prog.Adopt(ifindex, progID); err != nil {
			return err
		}
	}
	d.neigh = netlink.NewNeighbours(d.log)
	d.hops = newResolver(d.log, d.neigh, d.up, d.down)
	d.eng = dataplane.NewEngine(conntrack.New(d.opts.ConntrackSize, conntrack.DefaultTimeouts), d.log)
	wf := workerFlows(d.opts.WorkerFlows, d.opts.ConntrackSize, queues)
	if err := d.eng.SetWorkerFlows(wf); err != nil {
		return fmt.Errorf("--worker-flows: %w", err)
	}
	d.log.Info("express records for a large table", zap.Int("flows_per_worker", wf),
		zap.Int("mib_per_worker", dataplane.RecordBytes(wf)>>20))
	if err := d.setLocalAddrs(); err != nil {
		return err
	}
	if err := d.prog.SetBackendInterface(d.down.Index); err != nil {
		return err
	}
	d.health = health.NewChecker(d.log, func(uint32, bool) {
		if err := d.core.refresh(); err != nil {
			d.log.Warn("apply health change", zap.Error(err))
		}
	})
	if err := d.setupSNAT(); err != nil {
		return err
	}
	d.core = &core{log: d.log, store: d.store, eng: d.eng, kern: d.prog, probes: d.health, hops: d.hops,
		env: env{links: d.links(), snat4: hasFamily(d.opts.SNATAddrs, false), snat6: hasFamily(d.opts.SNATAddrs, true), localAddrs: d.localAddrs, sockets: d.socketViews,
			ifName: d.ifName, upName: d.up.Name, upIndex: d.up.Index, downName: d.down.Name, wakeRefresh: d.wake, startBGP: d.startSpeaker}}
	if err := d.seed(flags); err != nil {
		return err
	}
	if d.opts.ConfigPath != "" {
		if err := d.applyConfig(configText); err != nil {
			return err
		}
	}
	d.restoreConntrack()
	if err := d.startWorkers(queues); err != nil {
		return err
	}
	// Attach last: by now every queue has a registered socket and a running
	// worker, so no steered packet meets an empty XSKMAP slot.
	for _, ifc := range d.interfaces() {
		if err := d.prog.Attach(ifc.Index, d.opts.Mode); err != nil {
			if d.opts.Mode == bpf.Native {
				return fmt.Errorf("%w (the driver may lack native XDP: try --xdp-mode generic)", err)
			}
			return err
		}
		d.log.Info("xdp attached", zap.String("if", ifc.Name), zap.Stringer("mode", d.opts.Mode))
	}
	d.releaseHolders()
	// Announce only now that every table serves the VIPs.
	if err := d.core.startAnnouncing(); err != nil {
		return err
	}
	if err := d.listen(); err != nil {
		return err
	}
	d.log.Info("load balancer running", zap.String("upstream", d.up.Name), zap.String("backend_if", d.down.Name),
		zap.Bool("one_arm", d.oneArm), zap.Int("queues", queues), zap.Int("services", len(d.store.State().Services)),
		zap.String("api", d.opts.APISocket), zap.String("state", d.opts.StatePath))
	return nil
}

// seed applies the flag services by the one rule (config.Seed), installs
// the first plan, then resolves the next hops and installs again.
func (d *Daemon) seed(flags []config.Service) error {
	var ignored []string
	st, err := d.core.change(func(st *config.State) (err error) {
		ignored, err = config.Seed(st, flags, d.opts.BGP, d.store.Existed())
		return err
	})
	if err != nil {
		return fmt.Errorf("state %s: %w", d.opts.StatePath, err)
	}
	if len(ignored) > 0 {
		d.log.Warn("flags ignored: the state file wins once it exists (change it through the API, or remove "+
			"the state file to start over from the flags)", zap.String("state", d.opts.StatePath), zap.Strings("ignored", ignored))
	}
	for _, s := range st.Services {
		if d.isLocal(s.VIP) {
			d.log.Warn("a VIP is an address of this host; its traffic no longer reaches the host's listeners",
				zap.Stringer("vip", s.VIP))
		}
	}
	if changed, _ := d.hops.Refresh(backendAddrs(st), time.Now()); changed {
		return d.core.refresh()
	}
	return nil
}

func backendAddrs(st *config.State) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, s := range st.Services {
		for _, b := range s.Backends {
			if !seen[b.Addr] {
				seen[b.Addr] = true
				out = append(out, b.Addr)
			}
		}
	}
	return out
}

// wake asks the refresh loop to resolve next hops now (a new backend).
func (d *Daemon) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// serve keeps next hops, local addresses and conntrack fresh until ctx ends.
func (d *Daemon) serve(ctx context.Context) error {
	// Next hops are re-read every 200ms while a backend is unresolved, and
	// every 2s once all are known (a replaced backend's new MAC, or a
	// deleted neighbour entry, shows up within 2s).
	fast := time.NewTicker(200 * time.Millisecond)
	defer fast.Stop()
	var lastRefresh time.Time
	unresolved := 0
	gc := time.NewTicker(5 * time.Second)
	defer gc.Stop()
	srvCtx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the HTTP servers whichever way serve returns
	srvErr := make(chan error, len(d.servers))
	for _, s := range d.servers {
		s.start(srvCtx, srvErr)
	}
	var stats <-chan time.Time
	if d.opts.StatsInterval > 0 {
		t := time.NewTicker(d.opts.StatsInterval)
		defer t.Stop()
		stats = t.C
	}
	watch := newNoSocketWatch(d.log)
	done := ctx.Done()
	var drained <-chan time.Time
	refresh := func(now time.Time) {
		lastRefresh = now
		var changed bool
		changed, unresolved = d.hops.Refresh(backendAddrs(d.store.State()), now)
		if changed {
			if err := d.core.refresh(); err != nil {
				d.log.Warn("apply next hops", zap.Error(err))
			}
		}
	}
	for {
		select {
		case <-done:
			done = nil
			if drained = d.withdraw(); drained == nil {
				return nil
			}
		case <-drained:
			d.log.Info("bgp drain over")
			return nil
		case <-d.opts.Hurry:
			if drained != nil {
				d.log.Info("bgp drain cut short by a second signal")
				return nil
			}
		case err := <-d.werr:
			return err
		case <-d.opts.Reload:
			if err := d.reloadConfig(); err != nil {
				d.log.Error("reload: the state is unchanged", zap.Error(err))
			}
		case err := <-srvErr:
			return err
		case <-d.kick:
			refresh(time.Now())
		case now := <-fast.C:
			if unresolved > 0 || now.Sub(lastRefresh) >= 2*time.Second {
				d.followLinks()
				refresh(now)
				if err := d.setLocalAddrs(); err != nil {
					d.log.Warn("refresh local addresses", zap.Error(err))
				}
				watch.check(d.prog)
			}
		case a := <-d.eng.HopRequests():
			d.hops.RequestClient(a.IP())
		case <-gc.C:
			if n := d.eng.Conntrack().Expire(time.Now().UnixNano()); n > 0 {
				d.log.Debug("conntrack expired", zap.Int("flows", n))
			}
		case <-stats:
			d.logStats()
		}
	}
}

// shutdown detaches XDP first, so traffic falls back to the kernel at once,
// then stops the workers and closes the sockets. Every exit path (signal,
// worker or server error, failed start) comes through here.
func (d *Daemon) shutdown() error {
	var errs []error
	if d.core != nil {
		// Before XDP goes: the sessions close, routers drop our routes.
		d.core.stopBGP()
	}
	if d.health != nil {
		d.health.Close()
	}
	for _, s := range d.servers {
		errs = append(errs, s.stop())
	}
	held := false
	if d.prog != nil {
		if d.opts.RestartHold > 0 && d.snapshotDue && d.prog.Attached() == len(d.interfaces()) {
			held = d.holdXDP()
		}
		if !held {
			for _, ifc := range d.interfaces() {
				errs = append(errs, d.prog.Detach(ifc.Index))
			}
		}
	}
	for _, w := range d.workers {
		w.Stop()
	}
	if d.eng != nil {
		d.saveConntrack()
	}
	if d.core != nil && d.core.last != nil {
		d.logStats()
	}
	for _, s := range d.sockets {
		errs = append(errs, s.Close())
	}
	for _, u := range d.umems {
		errs = append(errs, u.Close())
	}
	if d.prog != nil {
		errs = append(errs, d.prog.Close())
	}
	if d.neigh != nil {
		errs = append(errs, d.neigh.Close())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	if d.unreserve != nil {
		errs = append(errs, d.unreserve())
	}
	err := errors.Join(errs...)
	switch {
	case held:
		d.log.Info("stopped; xdp held for the next daemon", zap.Error(err))
	case d.prog != nil:
		d.log.Info("stopped; xdp detached", zap.Error(err))
	}
	return err
}

// hasFamily says whether addrs hold an address of a family.
func hasFamily(addrs []netip.Addr, v6 bool) bool {
	for _, a := range addrs {
		if a.Is6() == v6 {
			return true
		}
	}
	return false
}
