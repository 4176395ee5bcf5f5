package daemon

import (
	"fmt"
	"net/netip"
	"sync"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
	"github.com/scmlb-xsk/scmlb-xsk/xsk"
)

// findInterfaces looks up the NICs and clears a stale XDP attachment of
// ours; a program someone else attached, or a running daemon's, is refused.
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
// through netlink. A program held by a bpf_link belongs to a live process
// (the kernel drops a dead one's links): if that is a daemon, say which.
func (d *Daemon) replaceStaleXDP(ifc netlink.Interface) error {
	if ifc.XDPProgID == 0 {
		return nil
	}
	ours, err := bpf.IsOwnProgram(ifc.XDPProgID)
	if err != nil || !ours {
		return fmt.Errorf("interface %s already has XDP program %d attached; remove it first (ip link set dev %s xdp off)",
			ifc.Name, ifc.XDPProgID, ifc.Name)
	}
	if pid, held := xdpHolder(ifc.XDPProgID); held {
		if isHolder(pid) {
			// A predecessor's program, held across its restart: taken
			// over once this daemon attaches.
			d.adopt[ifc.Index] = ifc.XDPProgID
			d.holders = append(d.holders, pid)
			return nil
		}
		return fmt.Errorf("interface %s is served by another scmlb-xsk (pid %d, XDP program %d); stop it first",
			ifc.Name, pid, ifc.XDPProgID)
	}
	d.log.Warn("replacing a stale scmlb-xsk XDP program", zap.String("if", ifc.Name), zap.Uint32("prog_id", ifc.XDPProgID))
	if err := netlink.DetachXDP(ifc.Index); err != nil {
		return fmt.Errorf("%s has scmlb-xsk's XDP program %d, which could not be removed: %w", ifc.Name, ifc.XDPProgID, err)
	}
	return nil
}

func (d *Daemon) interfaces() []netlink.Interface {
	if d.oneArm {
		return []netlink.Interface{d.up}
	}
	return []netlink.Interface{d.up, d.down}
}

func (d *Daemon) nic(ifc netlink.Interface) nic {
	n := nic{name: ifc.Name, queues: ifc.Queues}
	if r, ok := netlink.RSSQueues(ifc.Name); ok {
		n.rss = r
	}
	return n
}

func (d *Daemon) ifName(ifindex int) string {
	for _, ifc := range d.interfaces() {
		if ifc.Index == ifindex {
			return ifc.Name
		}
	}
	return fmt.Sprintf("ifindex%d", ifindex)
}

// setLocalAddrs tells the XDP program the host's own addresses, so the
// daemon's health probes (and anything else the host sends to a backend)
// get their replies through the kernel.
func (d *Daemon) setLocalAddrs() error {
	all, err := netlink.AllAddrs()
	if err != nil {
		return err
	}
	return d.prog.SetLocalAddrs(all)
}

func (d *Daemon) localAddrs() []netip.Addr {
	all, err := netlink.AllAddrs()
	if err != nil {
		d.log.Warn("read host addresses", zap.Error(err))
	}
	return all
}

func (d *Daemon) isLocal(a netip.Addr) bool {
	for _, l := range d.localAddrs() {
		if l == a {
			return true
		}
	}
	return false
}

// startWorkers opens and registers, per queue index, the upstream and
// backend sockets on one UMEM and starts a worker on them.
func (d *Daemon) startWorkers(queues int) error {
	for slot, ifc := range d.interfaces() {
		if err := d.prog.SetInterfaceSlot(ifc.Index, slot); err != nil {
			return err
		}
	}
	xo := d.opts.XSK
	xo.Copy = xo.Copy || d.opts.Mode == bpf.Generic
	if !d.oneArm {
		xo.NumFrames *= 2 // --frames is per socket; the UMEM serves both
	}
	for q := 0; q < queues; q++ {
		u, err := xsk.NewUMEM(xo)
		if err != nil {
			return fmt.Errorf("queue %d: %w", q, err)
		}
		d.umems = append(d.umems, u)
		up, err := d.openSocket(0, d.up, q, u)
		if err != nil {
			return err
		}
		down := up
		if !d.oneArm {
			if down, err = d.openSocket(1, d.down, q, u); err != nil {
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

func (d *Daemon) openSocket(slot int, ifc netlink.Interface, q int, u *xsk.UMEM) (*xsk.Socket, error) {
	s, err := u.Open(ifc.Index, q)
	if err != nil {
		return nil, fmt.Errorf("%s queue %d: %w", ifc.Name, q, err)
	}
	qs := queueSocket{ifname: ifc.Name, Socket: s, shared: !d.oneArm && s.ShareError() == ""}
	d.sockets = append(d.sockets, qs)
	zc, why := s.ZeroCopy()
	log := d.log.With(zap.String("if", ifc.Name), zap.Int("queue", q), zap.Bool("zero_copy", zc),
		zap.Bool("need_wakeup", s.NeedWakeup()), zap.Bool("shared_umem", qs.shared))
	switch {
	case s.ShareError() != "":
		log.Warn("af_xdp socket could not share the worker's UMEM: frames crossing to it are copied",
			zap.String("why", s.ShareError()))
	case !zc && why != "":
		log.Info("af_xdp socket in copy mode: the driver has no zero-copy", zap.String("why", why))
	default:
		log.Info("af_xdp socket open")
	}
	if err := d.prog.RegisterSocket(slot, q, s.FD()); err != nil {
		return nil, err
	}
	return s, nil
}

// queueSocket is an AF_XDP socket and the interface it is bound to.
type queueSocket struct {
	ifname string
	*xsk.Socket
	shared bool // shares its UMEM with the worker's other socket
}

func (d *Daemon) socketViews() []api.SocketStats {
	out := make([]api.SocketStats, 0, len(d.sockets))
	for _, s := range d.sockets {
		out = append(out, socketView(s))
	}
	return out
}

// noSocketWatch warns when packets for a service met a queue without a
// socket, at most once per check (every 2s), with how many.
type noSocketWatch struct {
	log  *zap.Logger
	once sync.Once
	last uint64
}

func newNoSocketWatch(log *zap.Logger) *noSocketWatch { return &noSocketWatch{log: log} }

func (w *noSocketWatch) check(k Kernel) {
	v, err := k.VerdictStats()
	if err != nil {
		return
	}
	n := v[bpf.VerdictNoSocket.String()].Packets
	w.once.Do(func() { w.last = n })
	if n > w.last {
		w.log.Warn("service packets arrived on an RX queue without an AF_XDP socket and were passed to the kernel "+
			"(see the queue checks in docs/operations.md)", zap.Uint64("packets", n-w.last), zap.Uint64("total", n))
	}
	w.last = n
}

func (d *Daemon) logStats() {
	st := d.eng.Stats()
	fields := []zap.Field{zap.Uint64("rx", st.RxPackets), zap.Uint64("forwarded", st.Forwarded),
		zap.Uint64("replied", st.Replied), zap.Uint64("new_flows", st.NewFlows), zap.Uint64("rebuilt_flows", st.RebuiltFlows),
		zap.Int("conntrack", d.eng.Conntrack().Len())}
	for k, v := range st.Drops {
		if v > 0 {
			fields = append(fields, zap.Uint64("drop_"+k, v))
		}
	}
	d.log.Info("stats", fields...)
	for _, s := range d.core.current().state.Services {
		for _, b := range s.Backends {
			p, by, f := d.eng.BackendCounters(b.ID)
			d.log.Info("backend stats", zap.Stringer("service", netip.AddrPortFrom(s.VIP, s.Port)),
				zap.Stringer("backend", netip.AddrPortFrom(b.Addr, b.Port)),
				zap.Uint64("packets", p), zap.Uint64("bytes", by), zap.Uint64("flows", f))
		}
	}
	if xs, err := d.prog.VerdictStats(); err == nil {
		d.log.Info("xdp verdicts", zap.Any("verdicts", xs))
	}
}
