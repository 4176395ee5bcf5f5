package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/control/health"
	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/xsk"
)

// Daemon is a running load balancer.
type Daemon struct {
	log      *zap.Logger
	opts     Options
	up, down netlink.Interface
	oneArm   bool
	prog     *bpf.Program
	eng      *dataplane.Engine
	neigh    *netlink.Neighbours
	sockets  []queueSocket
	workers  []*dataplane.Worker
	werr     chan error
	store    *config.Store
	servers  []*httpServer // API, metrics
	// mu serialises reconfig between the refresh loop and API changes.
	mu  sync.Mutex
	cfg *dataplane.Config // last pushed
	// unresolved counts backends whose next-hop MAC is unknown; problems
	// holds the last reported reason per backend address.
	unresolved int
	problems   map[netip.Addr]string
	// filters is the state whose firewall rules and DoS policies were last
	// pushed; fwSlots and dosSlots map their ids to map slots.
	filters  *config.State
	fwSlots  *slots
	dosSlots *slots
	health   *health.Checker
	dumping  atomic.Bool // one dump session at a time
}

// Run starts the load balancer and serves until ctx is cancelled, then
// detaches and releases everything. A start-up failure also releases
// whatever was set up.
func Run(ctx context.Context, o Options, log *zap.Logger) (err error) {
	d := &Daemon{log: log.Named("daemon"), opts: o, werr: make(chan error, 1), problems: map[netip.Addr]string{}}
	defer func() { err = errors.Join(err, d.shutdown()) }()
	if err := d.start(); err != nil {
		return err
	}
	return d.serve(ctx)
}

func (d *Daemon) start() error {
	svcs, err := config.Resolve(d.opts.Services)
	if err != nil {
		return err
	}
	// Check the machine before touching the state file: a start that fails
	// must not have changed the persisted state.
	if err := d.findInterfaces(); err != nil {
		return err
	}
	queues, err := d.queueCount()
	if err != nil {
		return err
	}
	if d.store, err = config.Open(d.opts.StatePath); err != nil {
		return err
	}
	// Services given on the command line are added to the restored state
	// if missing; what the API changed since is kept.
	for _, s := range svcs {
		if err := d.store.Ensure(s); err != nil {
			return fmt.Errorf("service %s from the command line: %w", s, err)
		}
	}
	if d.prog, err = bpf.Load(); err != nil {
		return err
	}
	d.neigh = netlink.NewNeighbours(d.log)
	d.eng = dataplane.NewEngine(conntrack.New(d.opts.ConntrackSize, conntrack.DefaultTimeouts), d.log)
	if err := d.setLocalAddrs(); err != nil {
		return err
	}
	d.fwSlots, d.dosSlots = newSlots(bpf.MaxFirewallRules), newSlots(bpf.MaxDosPolicies)
	d.health = health.NewChecker(d.log, func(uint32, bool) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if err := d.reconfig(); err != nil {
			d.log.Warn("apply health change", zap.Error(err))
		}
	})
	d.mu.Lock()
	d.syncHealth()
	err = d.syncFilters()
	if err == nil {
		err = d.reconfig()
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
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
	if err := d.listen(); err != nil {
		return err
	}
	d.log.Info("load balancer running", zap.String("upstream", d.up.Name), zap.String("backend_if", d.down.Name),
		zap.Bool("one_arm", d.oneArm), zap.Int("queues", queues), zap.Int("services", len(d.store.Snapshot().Services)),
		zap.String("api", d.opts.APISocket), zap.String("state", d.opts.StatePath))
	return nil
}

// setLocalAddrs tells the XDP program the host's own addresses, so the
// daemon's health probes (and anything else the host sends to a backend)
// get their replies through the kernel.
func (d *Daemon) setLocalAddrs() error {
	var all []netip.Addr
	for _, ifc := range d.interfaces() {
		a, err := netlink.Addrs(ifc.Index)
		if err != nil {
			return err
		}
		all = append(all, a...)
	}
	return d.prog.SetLocalAddrs(all)
}

// findInterfaces looks up the NICs and refuses ones that already carry an
// XDP program: replacing someone else's program silently is not ours to do.
func (d *Daemon) findInterfaces() error {
	var err error
	if d.up, err = netlink.InterfaceByName(d.opts.Upstream); err != nil {
		return err
	}
	d.down, d.oneArm = d.up, d.opts.BackendIf == "" || d.opts.BackendIf == d.opts.Upstream
	if !d.oneArm {
		if d.down, err = netlink.InterfaceByName(d.opts.BackendIf); err != nil {
			return err
		}
	}
	for _, ifc := range d.interfaces() {
		if err := d.replaceStaleXDP(ifc); err != nil {
			return err
		}
	}
	return nil
}

// replaceStaleXDP removes our own program left attached by an earlier run
// (attached through netlink, or by a version that did); a running daemon's
// bpf_link cannot be removed, and someone else's program is refused.
func (d *Daemon) replaceStaleXDP(ifc netlink.Interface) error {
	if ifc.XDPProgID == 0 {
		return nil
	}
	ours, err := bpf.IsOwnProgram(ifc.XDPProgID)
	if err != nil || !ours {
		return fmt.Errorf("interface %s already has XDP program %d attached; remove it first (ip link set dev %s xdp off)",
			ifc.Name, ifc.XDPProgID, ifc.Name)
	}
	d.log.Warn("replacing a stale scmlb-xsk XDP program", zap.String("if", ifc.Name), zap.Uint32("prog_id", ifc.XDPProgID))
	if err := netlink.DetachXDP(ifc.Index); err != nil {
		return fmt.Errorf("%s has scmlb-xsk's XDP program %d, probably held by a running daemon: %w", ifc.Name, ifc.XDPProgID, err)
	}
	return nil
}

// startWorkers opens and registers one socket per queue and interface and
// starts a worker per queue index.
func (d *Daemon) startWorkers(queues int) error {
	for slot, ifc := range d.interfaces() {
		if err := d.prog.SetInterfaceSlot(ifc.Index, slot); err != nil {
			return err
		}
	}
	xo := d.opts.XSK
	xo.Copy = xo.Copy || d.opts.Mode == bpf.Generic
	for q := 0; q < queues; q++ {
		up, err := d.openSocket(0, d.up, q, xo)
		if err != nil {
			return err
		}
		down := up
		if !d.oneArm {
			if down, err = d.openSocket(1, d.down, q, xo); err != nil {
				return err
			}
		}
		cpu := -1
		if cpus := d.opts.CPUs; len(cpus) > 0 {
			cpu = cpus[q%len(cpus)]
		}
		w := d.eng.NewWorker(q, up, down, cpu)
		d.workers = append(d.workers, w)
		go func() {
			if err := w.Run(); err != nil {
				select {
				case d.werr <- err:
				default:
				}
			}
		}()
	}
	return nil
}

func (d *Daemon) interfaces() []netlink.Interface {
	if d.oneArm {
		return []netlink.Interface{d.up}
	}
	return []netlink.Interface{d.up, d.down}
}

func (d *Daemon) queueCount() (int, error) {
	have := min(d.up.Queues, d.down.Queues, bpf.MaxQueues)
	q := d.opts.Queues
	if q == 0 {
		return have, nil
	}
	if q < 0 || q > have {
		return 0, fmt.Errorf("--queues %d: %s and %s have %d RX queues in common (max %d)",
			q, d.up.Name, d.down.Name, have, bpf.MaxQueues)
	}
	return q, nil
}

func (d *Daemon) openSocket(slot int, ifc netlink.Interface, q int, o xsk.Options) (*xsk.Socket, error) {
	s, err := xsk.Open(ifc.Index, q, o)
	if err != nil {
		return nil, fmt.Errorf("%s queue %d: %w", ifc.Name, q, err)
	}
	d.sockets = append(d.sockets, queueSocket{ifname: ifc.Name, Socket: s})
	if err := d.prog.RegisterSocket(slot, q, s.FD()); err != nil {
		return nil, err
	}
	return s, nil
}

// queueSocket is an AF_XDP socket and the interface it is bound to.
type queueSocket struct {
	ifname string
	*xsk.Socket
}

// serve keeps MACs fresh and conntrack trimmed until ctx ends.
func (d *Daemon) serve(ctx context.Context) error {
	// Next hops are re-read every 200ms while a backend is unresolved, and
	// every 2s once all are known (a replaced backend's new MAC shows up
	// within 2s).
	fast := time.NewTicker(200 * time.Millisecond)
	defer fast.Stop()
	lastRefresh := time.Now()
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
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-d.werr:
			return err
		case err := <-srvErr:
			return err
		case now := <-fast.C:
			d.mu.Lock()
			if d.unresolved > 0 || now.Sub(lastRefresh) >= 2*time.Second {
				lastRefresh = now
				if err := d.reconfig(); err != nil {
					d.log.Warn("refresh next hops", zap.Error(err))
				}
			}
			d.mu.Unlock()
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
// then stops the workers and closes the sockets.
func (d *Daemon) shutdown() error {
	var errs []error
	if d.health != nil {
		d.health.Close()
	}
	for _, s := range d.servers {
		errs = append(errs, s.stop())
	}
	if d.prog != nil {
		for _, ifc := range d.interfaces() {
			errs = append(errs, d.prog.Detach(ifc.Index))
		}
	}
	for _, w := range d.workers {
		w.Stop()
	}
	if d.cfg != nil {
		d.logStats()
	}
	for _, s := range d.sockets {
		errs = append(errs, s.Close())
	}
	if d.prog != nil {
		errs = append(errs, d.prog.Close())
	}
	if d.neigh != nil {
		errs = append(errs, d.neigh.Close())
	}
	err := errors.Join(errs...)
	if d.prog != nil {
		d.log.Info("stopped; xdp detached", zap.Error(err))
	}
	return err
}
