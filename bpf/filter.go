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
	if err := p.fwPrefixes.sync(sets.v4); err != nil {
		return err
	}
	if err := p.fwPrefixes6.sync(sets.v6); err != nil {
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

// prefixSets are the rule sets of both tries.
type prefixSets struct {
	v4 map[xdpLpmV4Key]xdpRuleSet
	v6 map[xdpLpmV6Key]xdpRuleSet
}

// ruleSets gives every distinct rule prefix the slots of all rules whose
// prefix contains it: prefixes containing an address are nested, so the
// longest match on the source then sees every rule that applies. IPv4 and
// IPv6 prefixes go to their own tries; a prefix never contains one of the
// other family.
func ruleSets(rules []FirewallRule) (prefixSets, error) {
	sets := prefixSets{v4: map[xdpLpmV4Key]xdpRuleSet{}, v6: map[xdpLpmV6Key]xdpRuleSet{}}
	done := map[netip.Prefix]bool{}
	for _, r := range rules {
		if int(r.Slot) >= MaxFirewallRules {
			return prefixSets{}, fmt.Errorf("firewall slot %d out of range", r.Slot)
		}
		if !r.Prefix.IsValid() || r.Prefix.Addr().Is4In6() {
			return prefixSets{}, fmt.Errorf("firewall rule %s: want an IPv4 or IPv6 prefix", r.Prefix)
		}
		pfx := r.Prefix.Masked()
		if done[pfx] {
			continue
		}
		done[pfx] = true
		var set xdpRuleSet
		for _, o := range rules {
			if o.Prefix.Bits() <= pfx.Bits() && o.Prefix.Masked().Contains(pfx.Addr()) {
				if int(set.Count) == MaxRulesPerPrefix {
					return prefixSets{}, fmt.Errorf("more than %d rules cover %s", MaxRulesPerPrefix, pfx)
				}
				set.Slots[set.Count] = o.Slot
				set.Count++
			}
		}
		k, _ := addrKey(pfx.Addr())
		if pfx.Addr().Is4() {
			sets.v4[xdpLpmV4Key{Prefixlen: uint32(pfx.Bits()), Addr: k.W[3]}] = set
		} else {
			sets.v6[xdpLpmV6Key{Prefixlen: uint32(pfx.Bits()), Addr: k.W}] = set
		}
	}
	return sets, nil
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
	if err := deleteWhere[xdpDosKey, xdpDosState](p.objs.DosSources, func(k xdpDosKey) bool { return changed[k.Policy] }); err != nil {
		return err
	}
	return deleteWhere[xdpDosKey6, xdpDosState](p.objs.DosSources6, func(k xdpDosKey6) bool { return changed[k.Policy] })
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
	now, err := monotonic()
	if err != nil {
		return nil, err
	}
	out, err := blockedIn(p.objs.DosSources, now, func(k xdpDosKey) (netip.Addr, uint32) {
		return keyAddr([4]uint32{0, 0, 0xffff0000, k.Addr}), k.Policy
	})
	if err != nil {
		return nil, err
	}
	out6, err := blockedIn(p.objs.DosSources6, now, func(k xdpDosKey6) (netip.Addr, uint32) { return keyAddr(k.Addr), k.Policy })
	if err != nil {
		return nil, err
	}
	out = append(out, out6...)
	sort.Slice(out, func(i, j int) bool { return out[i].Remaining > out[j].Remaining })
	return out, nil
}

// blockedIn lists the sources a DoS map (of one family's keys K) blocks
// at now.
func blockedIn[K any](m *ebpf.Map, now uint64, source func(K) (netip.Addr, uint32)) ([]Blocked, error) {
	var out []Blocked
	var k K
	var st xdpDosState
	it := m.Iterate()
	for it.Next(&k, &st) {
		if st.BlockedUntil > now {
			a, slot := source(k)
			out = append(out, Blocked{Addr: a, Slot: slot, Remaining: time.Duration(st.BlockedUntil - now)})
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate %s: %w", m, err)
	}
	return out, nil
}

// monotonic is CLOCK_MONOTONIC in nanoseconds, bpf_ktime_get_ns's clock.
func monotonic() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("clock: %w", err)
	}
	return uint64(ts.Nano()), nil
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
