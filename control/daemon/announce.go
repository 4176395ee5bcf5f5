package daemon

import (
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/bgp"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
)

// BGP: the speaker runs with the state's settings and announces what the
// plan says (tables.announce). It starts only once XDP is attached, and a
// graceful stop freezes it withdrawn. All of it under core.mu.

// syncBGP makes the speaker match p: restarted when the settings changed,
// stopped when they were removed, then given p's VIPs.
func (c *core) syncBGP(p *plan) error {
	if !c.announcing.Load() {
		return nil
	}
	cur := c.speaker.Load()
	want := p.state.BGP
	if cur != nil && !cur.cfg.Equal(want) {
		// Stopped before its successor starts: both would be the same
		// router id to the same peers. Its sessions close, so routers drop
		// its routes at once.
		c.stopSpeaker()
		cur = nil
	}
	if want == nil {
		return nil
	}
	if cur == nil {
		a, err := c.env.startBGP(want)
		if err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
		cur = &speaker{Announcer: a, cfg: want}
		c.speaker.Store(cur)
		c.cur.announced = false
	}
	if c.cur.announced && slices.Equal(c.cur.announce, p.t.announce) {
		return nil
	}
	if err := cur.Announce(p.t.announce); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	c.cur.announce, c.cur.announced = p.t.announce, true
	return nil
}

// startAnnouncing lets the speaker run and announce: XDP is attached.
func (c *core) startAnnouncing() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.announcing.Store(true)
	if c.last == nil {
		return nil
	}
	return c.syncBGP(c.last)
}

// withdraw is a graceful stop's first step: every VIP is withdrawn and
// nothing announces again. It reports whether anything was announced
// (then routers need the drain time to move the traffic away).
func (c *core) withdraw() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.announcing.Store(false)
	s := c.speaker.Load()
	if s == nil {
		return false, nil
	}
	had := len(s.Announced()) > 0
	return had, s.WithdrawAll()
}

// stopSpeaker closes the speaker's sessions, if it runs.
func (c *core) stopSpeaker() {
	if s := c.speaker.Swap(nil); s != nil {
		s.Stop()
	}
	c.cur.announce, c.cur.announced = nil, false
}

// stopBGP stops the speaker at exit.
func (c *core) stopBGP() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.announcing.Store(false)
	c.stopSpeaker()
}

// startSpeaker is env.startBGP for the real daemon.
func (d *Daemon) startSpeaker(b *config.BGP) (Announcer, error) {
	cfg := bgp.Config{ASN: b.ASN, RouterID: b.RouterID, ListenPort: b.ListenPort,
		Hold: time.Duration(b.HoldSeconds) * time.Second}
	for _, p := range b.Peers {
		cfg.Peers = append(cfg.Peers, bgp.Peer{Addr: p.Addr, ASN: p.ASN})
	}
	s, err := bgp.Start(cfg, d.log)
	if err != nil {
		return nil, err // not a nil *Speaker in an interface
	}
	return s, nil
}

// withdraw starts a graceful stop: the VIPs are withdrawn while XDP still
// forwards; the returned channel fires when the drain is over (nil: there
// was nothing to drain, stop now).
func (d *Daemon) withdraw() <-chan time.Time {
	had, err := d.core.withdraw()
	if err != nil {
		d.log.Warn("bgp withdraw", zap.Error(err))
	}
	if !had || d.opts.BGPDrain == 0 {
		return nil
	}
	d.log.Info("bgp: VIPs withdrawn; still forwarding while routers move the traffic away",
		zap.Duration("drain", d.opts.BGPDrain))
	return time.After(d.opts.BGPDrain)
}
