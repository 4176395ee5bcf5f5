package dataplane

import (
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
)

// Engine holds the current table, the shared conntrack and the workers.
type Engine struct {
	log     *zap.Logger
	cfg     atomic.Pointer[table]
	tap     atomic.Pointer[Tap] // nil unless a dump is running
	ct      *conntrack.Table
	mu      sync.Mutex
	workers []*Worker
	bstats  map[uint32]*BackendStats
}

// NewEngine makes an engine with an empty configuration.
func NewEngine(ct *conntrack.Table, log *zap.Logger) *Engine {
	e := &Engine{log: log.Named("dataplane"), ct: ct, bstats: map[uint32]*BackendStats{}}
	t, _ := compile(Config{}, e.backendStats)
	e.cfg.Store(t)
	return e
}

// Reconfig compiles c and makes every worker use it from its next batch.
// On error the running configuration is unchanged.
func (e *Engine) Reconfig(c Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := compile(c, e.backendStats)
	if err != nil {
		return err
	}
	e.cfg.Store(t)
	e.log.Info("reconfigured", zap.Int("services", len(t.services)), zap.Int("backends", len(t.backends)))
	return nil
}

// backendStats keeps counters across reconfigurations (called under mu).
func (e *Engine) backendStats(id uint32) *BackendStats {
	s, ok := e.bstats[id]
	if !ok {
		s = &BackendStats{}
		e.bstats[id] = s
	}
	return s
}

// Conntrack is the shared flow table.
func (e *Engine) Conntrack() *conntrack.Table { return e.ct }

// Stats sums the workers' counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Drops: map[string]uint64{}}
	for _, w := range e.workers {
		c := &w.counters
		s.RxPackets += c.rx.Load()
		s.Forwarded += c.forwarded.Load()
		s.Replied += c.replied.Load()
		s.NewFlows += c.newFlows.Load()
		for i := range c.drops {
			s.Drops[DropNames[i]] += c.drops[i].Load()
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
