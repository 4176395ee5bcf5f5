package dataplane

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/snat"
)

// Engine holds the current table, the shared conntrack and the workers.
type Engine struct {
	log     *zap.Logger
	cfg     atomic.Pointer[table]
	current atomic.Pointer[Compiled] // what Install installed last
	tap     atomic.Pointer[Tap]      // nil unless a dump is running
	ct      *conntrack.Table
	hops    chan packet.Addr // clients whose next hop a worker needed and lacked
	snat    *snat.Allocator  // full-NAT source ports; nil without SNAT addresses
	mu      sync.Mutex
	workers []*Worker
	bstats  map[uint32]*BackendStats
	// workerFlows is how many flow directions each worker's express
	// records hold (0: none), for workers made after it is set.
	workerFlows int
}

// hopRequests bounds the queue of client next-hop requests; a worker never
// waits for it, a full queue only delays a rebuilt flow to the client's
// next retransmission.
const hopRequests = 64

// NewEngine makes an engine with an empty configuration.
func NewEngine(ct *conntrack.Table, log *zap.Logger) *Engine {
	e := &Engine{log: log.Named("dataplane"), ct: ct, bstats: map[uint32]*BackendStats{},
		hops: make(chan packet.Addr, hopRequests)}
	t, _ := compile(Config{}, nil, e.backendStats)
	e.cfg.Store(t)
	return e
}

// Compile checks and compiles c without touching what the workers use, so
// a caller can refuse a change before saving it. Services whose backends
// and weights are unchanged reuse the running Maglev tables.
func (e *Engine) Compile(c Config) (*Compiled, error) {
	t, err := compile(c, e.cfg.Load(), e.backendStats)
	if err != nil {
		return nil, err
	}
	return &Compiled{t: t}, nil
}

// Install makes every worker use a compiled table from its next batch.
// Counters of backends no longer in it are dropped.
func (e *Engine) Install(c *Compiled) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg.Store(c.t)
	e.current.Store(c)
	for id := range e.bstats {
		if c.t.backends.get(id) == nil {
			delete(e.bstats, id)
		}
	}
	e.log.Debug("reconfigured", zap.Int("services", c.t.services.len()), zap.Int("backends", c.t.backends.len()))
}

// Installed is the table the workers use (nil before the first Install).
func (e *Engine) Installed() *Compiled { return e.current.Load() }

// Reconfig compiles and installs c. On error the running table is unchanged.
func (e *Engine) Reconfig(c Config) error {
	t, err := e.Compile(c)
	if err != nil {
		return err
	}
	e.Install(t)
	return nil
}

// backendStats keeps counters across reconfigurations. Compile calls it
// without holding mu for the whole compile, so readers of counters never
// wait for Maglev tables to be built.
func (e *Engine) backendStats(id uint32) *BackendStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.bstats[id]
	if !ok {
		s = &BackendStats{}
		e.bstats[id] = s
	}
	return s
}

// SetWorkerFlows sizes the express records (xrecord.go) of the workers
// made after it: flows flow directions each (a flow forwarded and replied
// to through one worker takes two), in 272 bytes each, which the kernel
// hands out as records are made. 0 (the default) gives workers none: with
// a Large table their established flows then take the locked table path.
func (e *Engine) SetWorkerFlows(flows int) error {
	if flows < 0 || flows > MaxWorkerFlows {
		return fmt.Errorf("worker flows %d: want 0 (none) to %d", flows, MaxWorkerFlows)
	}
	e.workerFlows = flows
	return nil
}

// UseSNAT gives full-NAT services their source addresses and port range
// (inclusive). Call it once, before the workers start: ports are freed as
// conntrack drops the flows that hold them.
func (e *Engine) UseSNAT(addrs []netip.Addr, lo, hi uint16) {
	var as []packet.Addr
	for _, a := range addrs {
		as = append(as, packet.AddrFrom(a))
	}
	e.snat = snat.New(as, lo, hi)
	e.ct.OnRemove(func(en *conntrack.Entry) {
		e.snat.Free(en.Rev.Dst, en.Rev.DstPort, snat.Backend{Addr: en.Rev.Src, Port: en.Rev.SrcPort, Proto: en.Rev.Proto})
	})
}

// SNATPortsInUse counts the full-NAT source ports held by tracked flows.
func (e *Engine) SNATPortsInUse() int { return e.snat.InUse() }

// Conntrack is the shared flow table.
func (e *Engine) Conntrack() *conntrack.Table { return e.ct }

// HopRequests delivers clients whose next hop a worker needed (to rebuild a
// flow) and did not know; the daemon asks the kernel to resolve them.
func (e *Engine) HopRequests() <-chan packet.Addr { return e.hops }

// wantHop queues a request without waiting.
func (e *Engine) wantHop(a packet.Addr) {
	select {
	case e.hops <- a:
	default:
	}
}

// Stats sums the workers' counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Drops: make(map[string]uint64, NumDrops)}
	for d := Drop(0); d < NumDrops; d++ {
		s.Drops[d.String()] = 0 // every reason is listed, dropped or not
	}
	for _, w := range e.workers {
		c := &w.counters
		s.RxPackets += c.load(cRx)
		s.Forwarded += c.load(cForwarded)
		s.Replied += c.load(cReplied)
		s.NewFlows += c.load(cNewFlows)
		s.RebuiltFlows += c.load(cRebuilt)
		s.EchoReplies += c.load(cEchoReplies)
		s.ICMPTranslated += c.load(cICMPTranslated)
		s.FragNeededSent += c.load(cFragNeeded)
		s.Express += c.load(cExpress)
		for d := Drop(0); d < NumDrops; d++ {
			s.Drops[d.String()] += c.load(cDrops + counter(d))
		}
	}
	return s
}

// BackendCounters returns packets, bytes and flows for a backend id.
func (e *Engine) BackendCounters(id uint32) (packets, bytes, flows uint64) {
	e.mu.Lock()
	s := e.bstats[id]
	e.mu.Unlock()
	if s == nil {
		return 0, 0, 0
	}
	return s.Packets.Load(), s.Bytes.Load(), s.Flows.Load()
}
