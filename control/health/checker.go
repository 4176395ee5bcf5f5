package health

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Target is one backend to probe.
type Target struct {
	ID    uint32 // backend id
	Addr  netip.AddrPort
	Check Check
}

// Status is a backend's current health.
type Status struct {
	Healthy   bool
	Since     time.Time
	LastError string // of the last failed probe, "" after a success
}

// Checker runs one probe loop per target. Backends start healthy (as in
// HAProxy), so a restart does not take every backend out for rise x
// interval; a dead one is taken out after fall x interval.
type Checker struct {
	log      *zap.Logger
	onChange func(id uint32, healthy bool)
	mu       sync.Mutex
	loops    map[uint32]*loop
}

type loop struct {
	target Target
	cancel context.CancelFunc
	done   chan struct{}
	status Status
}

// NewChecker calls onChange (from a probe goroutine) whenever a backend
// changes state.
func NewChecker(log *zap.Logger, onChange func(id uint32, healthy bool)) *Checker {
	return &Checker{log: log.Named("health"), onChange: onChange, loops: map[uint32]*loop{}}
}

// Sync makes the running probes match targets: new ones start, removed
// ones stop, changed ones restart (keeping their status).
func (c *Checker) Sync(targets []Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := map[uint32]Target{}
	for _, t := range targets {
		want[t.ID] = t
	}
	for id, l := range c.loops {
		if t, ok := want[id]; !ok || t != l.target {
			l.cancel()
			delete(c.loops, id)
			if ok {
				c.start(t, l.status)
			}
		}
	}
	for id, t := range want {
		if _, ok := c.loops[id]; !ok {
			c.start(t, Status{Healthy: true, Since: time.Now()})
		}
	}
}

func (c *Checker) start(t Target, st Status) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loop{target: t, cancel: cancel, done: make(chan struct{}), status: st}
	c.loops[t.ID] = l
	go c.run(ctx, l)
}

func (c *Checker) run(ctx context.Context, l *loop) {
	defer close(l.done)
	t := l.target
	tick := time.NewTicker(t.Check.Interval)
	defer tick.Stop()
	ok, fail := 0, 0
	for {
		err := probe(ctx, t.Check, t.Addr)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			ok, fail = ok+1, 0
		} else {
			ok, fail = 0, fail+1
		}
		c.mu.Lock()
		st := &l.status
		changed := false
		if err != nil {
			st.LastError = err.Error()
		} else {
			st.LastError = ""
		}
		if !st.Healthy && ok >= t.Check.Rise || st.Healthy && fail >= t.Check.Fall {
			st.Healthy, st.Since, changed = !st.Healthy, time.Now(), true
		}
		healthy := st.Healthy
		c.mu.Unlock()
		if changed {
			c.log.Info("backend health changed", zap.Uint32("backend", t.ID), zap.Stringer("addr", t.Addr),
				zap.Bool("healthy", healthy), zap.Error(err))
			c.onChange(t.ID, healthy)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Status returns a backend's health; ok is false if it is not checked.
func (c *Checker) Status(id uint32) (Status, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.loops[id]
	if !ok {
		return Status{}, false
	}
	return l.status, true
}

// Healthy reports whether a backend may take new flows: unchecked backends
// are healthy.
func (c *Checker) Healthy(id uint32) bool {
	st, ok := c.Status(id)
	return !ok || st.Healthy
}

// Close stops every probe and waits for them.
func (c *Checker) Close() {
	c.mu.Lock()
	var loops []*loop
	for id, l := range c.loops {
		l.cancel()
		loops = append(loops, l)
		delete(c.loops, id)
	}
	c.mu.Unlock()
	for _, l := range loops {
		<-l.done
	}
}
