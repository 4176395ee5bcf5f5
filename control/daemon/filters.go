package daemon

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
)

// assignSlots gives each rule or policy id a map slot for its lifetime, so
// its per-CPU drop counter is its own. Ids still present keep their slot,
// new ids take the lowest free ones; fresh lists the slots that got a new
// owner, whose counters must start from zero. prev is not modified.
func assignSlots(prev map[uint32]uint32, ids []uint32, size int) (next map[uint32]uint32, fresh []uint32, err error) {
	next = make(map[uint32]uint32, len(ids))
	used := map[uint32]bool{}
	for _, id := range ids {
		if s, ok := prev[id]; ok {
			next[id] = s
			used[s] = true
		}
	}
	free := uint32(0)
	for _, id := range ids {
		if _, ok := next[id]; ok {
			continue
		}
		for used[free] {
			free++
		}
		if int(free) >= size {
			return nil, nil, fmt.Errorf("no free slot (limit %d)", size)
		}
		next[id] = free
		used[free] = true
		fresh = append(fresh, free)
	}
	slices.Sort(fresh)
	return next, fresh, nil
}

func ruleIDs(st *config.State) []uint32 {
	ids := make([]uint32, 0, len(st.FirewallRules))
	for _, r := range st.FirewallRules {
		ids = append(ids, r.ID)
	}
	return ids
}

func policyIDs(st *config.State) []uint32 {
	ids := make([]uint32, 0, len(st.DosPolicies))
	for _, p := range st.DosPolicies {
		ids = append(ids, p.ID)
	}
	return ids
}

// FirewallRules lists the rules with their drop counters.
func (c *core) FirewallRules() ([]api.FirewallRule, error) {
	drops, err := c.kern.FirewallDrops()
	if err != nil {
		return nil, err
	}
	p := c.current()
	out := []api.FirewallRule{}
	for _, r := range p.state.FirewallRules {
		v := ruleView(r)
		cnt := drops[p.fwSlots[r.ID]]
		v.DroppedPackets, v.DroppedBytes = cnt.Packets, cnt.Bytes
		out = append(out, v)
	}
	return out, nil
}

func ruleView(r config.FirewallRule) api.FirewallRule {
	return api.FirewallRule{ID: r.ID, Network: r.Network.String(), Proto: r.Proto.String(),
		SrcPorts: r.SrcPorts.String(), DstPorts: r.DstPorts.String()}
}

// AddFirewallRule parses and adds a deny rule.
func (c *core) AddFirewallRule(req api.AddFirewallRuleRequest) (api.FirewallRule, error) {
	network, err := netip.ParsePrefix(req.Network)
	if err != nil {
		return api.FirewallRule{}, fmt.Errorf("%w: network %q: want a CIDR such as 10.0.0.0/8 or 2001:db8::/32", config.ErrInvalid, req.Network)
	}
	r := config.FirewallRule{Network: network}
	if r.Proto, err = config.ParseFilterProto(req.Proto); err != nil {
		return api.FirewallRule{}, err
	}
	if r.SrcPorts, err = config.ParsePortRange(req.SrcPorts); err != nil {
		return api.FirewallRule{}, err
	}
	if r.DstPorts, err = config.ParsePortRange(req.DstPorts); err != nil {
		return api.FirewallRule{}, err
	}
	_, err = c.change(func(st *config.State) (err error) {
		r, err = st.AddFirewallRule(r)
		return err
	})
	if err != nil {
		return api.FirewallRule{}, err
	}
	return ruleView(r), nil
}

// DeleteFirewallRule removes a rule.
func (c *core) DeleteFirewallRule(id uint32) error {
	_, err := c.change(func(st *config.State) error { return st.DeleteFirewallRule(id) })
	return err
}

// DosPolicies lists the policies, their drops and the sources blocked now.
func (c *core) DosPolicies() ([]api.DosPolicy, error) {
	drops, err := c.kern.DosDrops()
	if err != nil {
		return nil, err
	}
	blocked, err := c.kern.DosBlocked()
	if err != nil {
		return nil, err
	}
	p := c.current()
	out := []api.DosPolicy{}
	for _, d := range p.state.DosPolicies {
		slot := p.dosSlots[d.ID]
		v := dosView(d)
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
	return api.DosPolicy{ID: p.ID, Proto: p.Proto.String(), Type: p.Type, LimitPPS: p.LimitPPS, BlockSeconds: p.BlockSeconds,
		Status: "not triggered", Blocked: []api.BlockedSource{}}
}

// AddDosPolicy adds a policy.
func (c *core) AddDosPolicy(req api.AddDosPolicyRequest) (api.DosPolicy, error) {
	p := config.DosPolicy{Type: config.ParseDosType(req.Type), LimitPPS: req.LimitPPS, BlockSeconds: req.BlockSeconds}
	var err error
	if p.Proto, err = config.ParseFilterProto(req.Proto); err != nil {
		return api.DosPolicy{}, err
	}
	_, err = c.change(func(st *config.State) (err error) {
		p, err = st.AddDosPolicy(p)
		return err
	})
	if err != nil {
		return api.DosPolicy{}, err
	}
	return dosView(p), nil
}

// DeleteDosPolicy removes a policy; its blocked sources are released.
func (c *core) DeleteDosPolicy(id uint32) error {
	_, err := c.change(func(st *config.State) error { return st.DeleteDosPolicy(id) })
	return err
}
