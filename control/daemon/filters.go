package daemon

import (
	"fmt"
	"net/netip"
	"reflect"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
)

// slots gives each rule or policy id a map slot for its lifetime, so its
// per-CPU drop counter is its own; a reused slot starts from zero.
type slots struct {
	byID map[uint32]uint32
	size int
}

func newSlots(size int) *slots { return &slots{byID: map[uint32]uint32{}, size: size} }

// assign keeps the slots of ids still present, frees the others, and gives
// new ids the lowest free slots; fresh lists the slots that need a reset.
func (s *slots) assign(ids []uint32) (fresh []uint32, err error) {
	keep := map[uint32]bool{}
	for _, id := range ids {
		keep[id] = true
	}
	used := map[uint32]bool{}
	for id, slot := range s.byID {
		if !keep[id] {
			delete(s.byID, id)
			continue
		}
		used[slot] = true
	}
	next := uint32(0)
	for _, id := range ids {
		if _, ok := s.byID[id]; ok {
			continue
		}
		for used[next] {
			next++
		}
		if int(next) >= s.size {
			return nil, fmt.Errorf("no free slot (limit %d)", s.size)
		}
		s.byID[id] = next
		used[next] = true
		fresh = append(fresh, next)
	}
	return fresh, nil
}

// sync assigns slots to ids and zeroes the counter of every slot that got
// a new id, so a reused slot does not show its previous owner's drops.
func (s *slots) sync(ids []uint32, reset func(slot uint32) error) error {
	fresh, err := s.assign(ids)
	if err != nil {
		return err
	}
	for _, slot := range fresh {
		if err := reset(slot); err != nil {
			return err
		}
	}
	return nil
}

// syncFilters pushes firewall rules and DoS policies to the XDP program when
// they changed. Callers hold d.mu.
func (d *Daemon) syncFilters() error {
	st := d.store.Snapshot()
	if d.filters != nil && reflect.DeepEqual(d.filters.FirewallRules, st.FirewallRules) &&
		reflect.DeepEqual(d.filters.DosPolicies, st.DosPolicies) {
		return nil
	}
	var ids []uint32
	for _, r := range st.FirewallRules {
		ids = append(ids, r.ID)
	}
	if err := d.fwSlots.sync(ids, d.prog.ResetFirewallDrops); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	var rules []bpf.FirewallRule
	for _, r := range st.FirewallRules {
		proto, _ := config.FirewallProtoNumber(r.Proto)
		rules = append(rules, bpf.FirewallRule{Slot: d.fwSlots.byID[r.ID], Prefix: r.Network, Proto: proto,
			SrcFrom: r.SrcPorts.From, SrcTo: r.SrcPorts.To, DstFrom: r.DstPorts.From, DstTo: r.DstPorts.To})
	}
	if err := d.prog.SetFirewall(rules); err != nil {
		return err
	}

	ids = ids[:0]
	for _, p := range st.DosPolicies {
		ids = append(ids, p.ID)
	}
	if err := d.dosSlots.sync(ids, d.prog.ResetDosDrops); err != nil {
		return fmt.Errorf("dos: %w", err)
	}
	var ps []bpf.DosPolicy
	for _, p := range st.DosPolicies {
		proto, _ := config.FirewallProtoNumber(p.Proto)
		mask, value := p.TCPFlags()
		ps = append(ps, bpf.DosPolicy{Slot: d.dosSlots.byID[p.ID], Proto: proto, FlagsMask: mask, FlagsValue: value,
			LimitPPS: p.LimitPPS, Block: time.Duration(p.BlockSeconds) * time.Second})
	}
	if err := d.prog.SetDosPolicies(ps); err != nil {
		return err
	}
	d.filters = &st
	return nil
}

// changeFilters applies a store change and pushes the filters.
func (d *Daemon) changeFilters(fn func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fn(); err != nil {
		return err
	}
	if err := d.syncFilters(); err != nil {
		return fmt.Errorf("saved, but not yet applied to the XDP program: %w", err)
	}
	return nil
}

// FirewallRules lists the rules with their drop counters.
func (d *Daemon) FirewallRules() ([]api.FirewallRule, error) {
	drops, err := d.prog.FirewallDrops()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []api.FirewallRule{}
	for _, r := range d.store.Snapshot().FirewallRules {
		c := drops[d.fwSlots.byID[r.ID]]
		out = append(out, api.FirewallRule{ID: r.ID, Network: r.Network.String(), Proto: r.Proto,
			SrcPorts: r.SrcPorts.String(), DstPorts: r.DstPorts.String(), DroppedPackets: c.Packets, DroppedBytes: c.Bytes})
	}
	return out, nil
}

// AddFirewallRule parses and adds a deny rule.
func (d *Daemon) AddFirewallRule(req api.AddFirewallRuleRequest) (api.FirewallRule, error) {
	network, err := netip.ParsePrefix(req.Network)
	if err != nil {
		return api.FirewallRule{}, fmt.Errorf("%w: network %q: want an IPv4 CIDR such as 10.0.0.0/8", config.ErrInvalid, req.Network)
	}
	r := config.FirewallRule{Network: network, Proto: req.Proto}
	if r.Proto == "" {
		r.Proto = "any"
	}
	if r.SrcPorts, err = config.ParsePortRange(req.SrcPorts); err != nil {
		return api.FirewallRule{}, err
	}
	if r.DstPorts, err = config.ParsePortRange(req.DstPorts); err != nil {
		return api.FirewallRule{}, err
	}
	err = d.changeFilters(func() (err error) {
		r, err = d.store.AddFirewallRule(r)
		return err
	})
	if err != nil {
		return api.FirewallRule{}, err
	}
	return api.FirewallRule{ID: r.ID, Network: r.Network.String(), Proto: r.Proto, SrcPorts: r.SrcPorts.String(),
		DstPorts: r.DstPorts.String()}, nil
}

// DeleteFirewallRule removes a rule.
func (d *Daemon) DeleteFirewallRule(id uint32) error {
	return d.changeFilters(func() error { return d.store.DeleteFirewallRule(id) })
}

// DosPolicies lists the policies, their drops and the sources blocked now.
func (d *Daemon) DosPolicies() ([]api.DosPolicy, error) {
	drops, err := d.prog.DosDrops()
	if err != nil {
		return nil, err
	}
	blocked, err := d.prog.DosBlocked()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []api.DosPolicy{}
	for _, p := range d.store.Snapshot().DosPolicies {
		slot := d.dosSlots.byID[p.ID]
		v := dosView(p)
		v.DroppedPackets, v.DroppedBytes = drops[slot].Packets, drops[slot].Bytes
		for _, b := range blocked {
			if b.Slot == slot {
				v.Blocked = append(v.Blocked, api.BlockedSource{Address: b.Addr.String(), RemainingSeconds: b.Remaining.Seconds()})
			}
		}
		if len(v.Blocked) > 0 {
			v.Status = "triggered"
		}
		out = append(out, v)
	}
	return out, nil
}

func dosView(p config.DosPolicy) api.DosPolicy {
	return api.DosPolicy{ID: p.ID, Proto: p.Proto, Type: p.Type, LimitPPS: p.LimitPPS, BlockSeconds: p.BlockSeconds,
		Status: "not triggered", Blocked: []api.BlockedSource{}}
}

// AddDosPolicy adds a policy.
func (d *Daemon) AddDosPolicy(req api.AddDosPolicyRequest) (api.DosPolicy, error) {
	p := config.DosPolicy{Proto: req.Proto, Type: req.Type, LimitPPS: req.LimitPPS, BlockSeconds: req.BlockSeconds}
	if p.Type == "" {
		p.Type = "any"
	}
	err := d.changeFilters(func() (err error) {
		p, err = d.store.AddDosPolicy(p)
		return err
	})
	if err != nil {
		return api.DosPolicy{}, err
	}
	return dosView(p), nil
}

// DeleteDosPolicy removes a policy; its blocked sources are released.
func (d *Daemon) DeleteDosPolicy(id uint32) error {
	return d.changeFilters(func() error { return d.store.DeleteDosPolicy(id) })
}
