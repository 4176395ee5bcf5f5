package bpf

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// FirewallRule is a deny rule in a slot. Ports are inclusive; 0-65535 is
// any. Proto 0 is any protocol.
type FirewallRule struct {
	Slot           uint32
	Prefix         netip.Prefix
	Proto          ipproto.Proto // Any: every protocol
	SrcFrom, SrcTo uint16
	DstFrom, DstTo uint16
}

// SetFirewall replaces the rule set. Rules are checked in the order given;
// the first match counts the drop.
func (p *Program) SetFirewall(rules []FirewallRule) error {
	sets, err := ruleSets(rules)
	if err != nil {
		return err
	}
	active := map[uint32]bool{}
	for _, r := range rules {
		v := xdpFwRule{Active: 1, Proto: uint8(r.Proto), SportLo: r.SrcFrom, SportHi: r.SrcTo, DportLo: r.DstFrom, DportHi: r.DstTo}
		if err := p.objs.FwRules.Put(r.Slot, v); err != nil {
			return fmt.Errorf("write firewall rule slot %d: %w", r.Slot, err)
		}
		active[r.Slot] = true
	}
	if err := p.fwPrefixes.sync(sets); err != nil {
		return err
	}
	for slot := range p.fwActive {
		if !active[slot] {
			if err := p.objs.FwRules.Put(slot, xdpFwRule{}); err != nil {
				return fmt.Errorf("clear firewall rule slot %d: %w", slot, err)
			}
		}
	}
	p.fwActive = active
	return nil
}

// ruleSets gives every distinct rule prefix the slots of all rules whose
// prefix contains it: prefixes containing an address are nested, so the
// longest match on the source then sees every rule that applies.
func ruleSets(rules []FirewallRule) (map[xdpLpmV4Key]xdpRuleSet, error) {
	sets := map[xdpLpmV4Key]xdpRuleSet{}
	for _, r := range rules {
		if int(r.Slot) >= MaxFirewallRules {
			return nil, fmt.Errorf("firewall slot %d out of range", r.Slot)
		}
		if !r.Prefix.Addr().Is4() {
			return nil, fmt.Errorf("firewall rule %s: only IPv4 is supported", r.Prefix)
		}
		pfx := r.Prefix.Masked()
		k := lpmKey(pfx)
		if _, done := sets[k]; done {
			continue
		}
		var set xdpRuleSet
		for _, o := range rules {
			if o.Prefix.Bits() <= pfx.Bits() && o.Prefix.Masked().Contains(pfx.Addr()) {
				if int(set.Count) == MaxRulesPerPrefix {
					return nil, fmt.Errorf("more than %d rules cover %s", MaxRulesPerPrefix, pfx)
				}
				set.Slots[set.Count] = o.Slot
				set.Count++
			}
		}
		sets[k] = set
	}
	return sets, nil
}

func lpmKey(p netip.Prefix) xdpLpmV4Key {
	e, _ := Endpoint{Addr: p.Addr()}.key()
	return xdpLpmV4Key{Prefixlen: uint32(p.Bits()), Addr: e.Addr}
}

// FirewallDrops returns the drop counters of the active rule slots.
func (p *Program) FirewallDrops() (map[uint32]Counter, error) {
	return slotCounters(p.objs.FwDrops, p.fwActive)
}

// ResetFirewallDrops zeroes a slot's counter, for a rule new in that slot.
func (p *Program) ResetFirewallDrops(slot uint32) error {
	return zeroPerCPU(p.objs.FwDrops, slot)
}

// DosPolicy is a rate limit in a slot: more than LimitPPS packets/s of
// Proto (for TCP, with flags&FlagsMask == FlagsValue) from one source blocks
// that source's Proto packets for Block.
type DosPolicy struct {
	Slot                  uint32
	Proto                 ipproto.Proto
	FlagsMask, FlagsValue uint8
	LimitPPS              uint32
	Block                 time.Duration
}

// SetDosPolicies replaces the policies. Sources tracked for a slot whose
// policy is removed or changed are forgotten, so a new policy starts clean.
func (p *Program) SetDosPolicies(ps []DosPolicy) error {
	active := map[uint32]xdpDosPolicy{}
	var top uint32
	for _, d := range ps {
		if int(d.Slot) >= MaxDosPolicies {
			return fmt.Errorf("dos policy slot %d out of range", d.Slot)
		}
		v := xdpDosPolicy{Active: 1, Proto: uint8(d.Proto), FlagsMask: d.FlagsMask, FlagsValue: d.FlagsValue,
			LimitPps: d.LimitPPS, BlockNs: uint64(d.Block)}
		if err := p.objs.DosPolicies.Put(d.Slot, v); err != nil {
			return fmt.Errorf("write dos policy slot %d: %w", d.Slot, err)
		}
		active[d.Slot] = v
		top = max(top, d.Slot+1)
	}
	if err := p.objs.DosSlots.Set(top); err != nil {
		return fmt.Errorf("set dos_slots: %w", err)
	}
	changed := map[uint32]bool{}
	for slot, old := range p.dosActive {
		if now, ok := active[slot]; !ok || now != old {
			changed[slot] = true
		}
		if _, ok := active[slot]; !ok {
			if err := p.objs.DosPolicies.Put(slot, xdpDosPolicy{}); err != nil {
				return fmt.Errorf("clear dos policy slot %d: %w", slot, err)
			}
		}
	}
	p.dosActive = active
	if len(changed) == 0 {
		return nil
	}
	return deleteWhere[xdpDosKey, xdpDosState](p.objs.DosSources, func(k xdpDosKey) bool { return changed[k.Policy] })
}

// DosDrops returns the drop counters of the active policy slots.
func (p *Program) DosDrops() (map[uint32]Counter, error) {
	slots := map[uint32]bool{}
	for s := range p.dosActive {
		slots[s] = true
	}
	return slotCounters(p.objs.DosDrops, slots)
}

// ResetDosDrops zeroes a slot's counter, for a policy new in that slot.
func (p *Program) ResetDosDrops(slot uint32) error {
	return zeroPerCPU(p.objs.DosDrops, slot)
}

// Blocked is a source a DoS policy is dropping.
type Blocked struct {
	Addr      netip.Addr
	Slot      uint32
	Remaining time.Duration
}

// DosBlocked lists the sources blocked now, longest remaining first.
func (p *Program) DosBlocked() ([]Blocked, error) {
	var ts unix.Timespec
	// bpf_ktime_get_ns is CLOCK_MONOTONIC.
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, fmt.Errorf("clock: %w", err)
	}
	now := uint64(ts.Nano())
	var out []Blocked
	var k xdpDosKey
	var st xdpDosState
	it := p.objs.DosSources.Iterate()
	for it.Next(&k, &st) {
		if st.BlockedUntil > now {
			var a [4]byte
			a[0], a[1], a[2], a[3] = byte(k.Addr), byte(k.Addr>>8), byte(k.Addr>>16), byte(k.Addr>>24)
			out = append(out, Blocked{Addr: netip.AddrFrom4(a), Slot: k.Policy, Remaining: time.Duration(st.BlockedUntil - now)})
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate dos sources: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Remaining > out[j].Remaining })
	return out, nil
}

func slotCounters(m *ebpf.Map, slots map[uint32]bool) (map[uint32]Counter, error) {
	out := make(map[uint32]Counter, len(slots))
	for s := range slots {
		c, err := sumPerCPU(m, s)
		if err != nil {
			return nil, err
		}
		out[s] = c
	}
	return out, nil
}

func zeroPerCPU(m *ebpf.Map, slot uint32) error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	if err := m.Put(slot, make([]xdpCounter, n)); err != nil {
		return fmt.Errorf("reset %s[%d]: %w", m, slot, err)
	}
	return nil
}
