package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// FirewallRule denies packets from Network matching the protocol and ports.
type FirewallRule struct {
	ID       uint32        `json:"id"`
	Network  netip.Prefix  `json:"network"`
	Proto    ipproto.Proto `json:"proto"` // any, tcp, udp or icmp
	SrcPorts PortRange     `json:"src_ports"`
	DstPorts PortRange     `json:"dst_ports"`
}

// PortRange is an inclusive range; 0-65535 is any port.
type PortRange struct {
	From uint16 `json:"from"`
	To   uint16 `json:"to"`
}

// AnyPort matches every port.
var AnyPort = PortRange{0, 65535}

// ParsePortRange reads "", "any" or "0" (any port, as scmlb's default), "22" or "1000-2000".
func ParsePortRange(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "any") || s == "0" {
		return AnyPort, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || a > b || a == 0 {
		return PortRange{}, fmt.Errorf("%w: port range %q: want PORT or FROM-TO with 1 <= FROM <= TO <= 65535", ErrInvalid, s)
	}
	return PortRange{uint16(a), uint16(b)}, nil
}

// Contains reports whether port is in the range.
func (p PortRange) Contains(port uint16) bool { return port >= p.From && port <= p.To }

func (p PortRange) String() string {
	switch {
	case p == AnyPort:
		return "any"
	case p.From == p.To:
		return strconv.Itoa(int(p.From))
	}
	return fmt.Sprintf("%d-%d", p.From, p.To)
}

// ParseFilterProto reads a filter's protocol: any, tcp, udp or icmp, in any
// letter case; "" is any.
func ParseFilterProto(s string) (ipproto.Proto, error) {
	if s == "" {
		return ipproto.Any, nil
	}
	p, err := ipproto.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return p, nil
}

func (r FirewallRule) validate() error {
	if !r.Network.IsValid() || r.Network.Addr().Is4In6() || r.Network.Addr().Zone() != "" {
		return fmt.Errorf("%w: network %s: want an IPv4 or IPv6 CIDR", ErrInvalid, r.Network)
	}
	if r.Network.Masked() != r.Network {
		return fmt.Errorf("%w: network %s has host bits set; did you mean %s?", ErrInvalid, r.Network, r.Network.Masked())
	}
	switch r.Proto {
	case ipproto.Any, ipproto.TCP, ipproto.UDP, ipproto.ICMP, ipproto.ICMPv6:
	default:
		return fmt.Errorf("%w: protocol %s: want any, tcp, udp, icmp or icmpv6", ErrInvalid, r.Proto)
	}
	if r.Proto == ipproto.ICMP && r.Network.Addr().Is6() || r.Proto == ipproto.ICMPv6 && r.Network.Addr().Is4() {
		return fmt.Errorf("%w: %s never comes from %s network %s (IPv4 carries icmp, IPv6 icmpv6)",
			ErrInvalid, r.Proto, Family(r.Network.Addr()), r.Network)
	}
	for _, pr := range []PortRange{r.SrcPorts, r.DstPorts} {
		if pr.From > pr.To {
			return fmt.Errorf("%w: port range %d-%d is empty", ErrInvalid, pr.From, pr.To)
		}
	}
	if r.Proto.IsICMP() && (r.SrcPorts != AnyPort || r.DstPorts != AnyPort) {
		return fmt.Errorf("%w: %s has no ports", ErrInvalid, r.Proto)
	}
	return nil
}

func (r FirewallRule) sameMatch(o FirewallRule) bool {
	return r.Network == o.Network && r.Proto == o.Proto && r.SrcPorts == o.SrcPorts && r.DstPorts == o.DstPorts
}

// DosPolicy limits packets per second per source for a protocol (and TCP
// flag type); a source over the limit is dropped for BlockSeconds.
type DosPolicy struct {
	ID           uint32        `json:"id"`
	Proto        ipproto.Proto `json:"proto"` // tcp, udp or icmp
	Type         string        `json:"type"`  // tcp: syn, ack, fin, rst or any; others: any
	LimitPPS     uint32        `json:"limit_pps"`
	BlockSeconds uint32        `json:"block_seconds"`
}

var tcpTypes = map[string][2]uint8{ // type -> flags mask, value
	"any": {0, 0},
	"syn": {0x02 | 0x10, 0x02}, // SYN without ACK: connection attempts, not SYN-ACKs
	"ack": {0x10, 0x10},
	"fin": {0x01, 0x01},
	"rst": {0x04, 0x04},
}

// ParseDosType reads a packet type in any letter case; "" is any.
func ParseDosType(s string) string {
	if s == "" {
		return "any"
	}
	return strings.ToLower(s)
}

// TCPFlags returns the flag mask and value a packet must match to count.
func (d DosPolicy) TCPFlags() (mask, value uint8) {
	f := tcpTypes[d.Type]
	return f[0], f[1]
}

func (d DosPolicy) validate() error {
	switch d.Proto {
	case ipproto.TCP:
		if _, ok := tcpTypes[d.Type]; !ok {
			return fmt.Errorf("%w: tcp packet type %q: want syn, ack, fin, rst or any", ErrInvalid, d.Type)
		}
	case ipproto.UDP, ipproto.ICMP, ipproto.ICMPv6:
		if d.Type != "any" {
			return fmt.Errorf("%w: %s packets have no type %q: use any", ErrInvalid, d.Proto, d.Type)
		}
	default:
		return fmt.Errorf("%w: protocol %s: want tcp, udp, icmp or icmpv6", ErrInvalid, d.Proto)
	}
	if d.LimitPPS == 0 {
		return fmt.Errorf("%w: limit must be >= 1 packet/s", ErrInvalid)
	}
	if d.BlockSeconds == 0 || d.BlockSeconds > 86400 {
		return fmt.Errorf("%w: block time %ds: want 1s to 24h", ErrInvalid, d.BlockSeconds)
	}
	return nil
}

// validateFilters checks rules and policies against each other and the
// program's limits.
func (s *State) validateFilters(l Limits) error {
	ids := map[uint32]bool{}
	for i, r := range s.FirewallRules {
		if err := r.validate(); err != nil {
			return err
		}
		if r.ID == 0 || r.ID >= s.NextRuleID || ids[r.ID] {
			return fmt.Errorf("firewall rule id %d out of range or used twice", r.ID)
		}
		ids[r.ID] = true
		covering := 0
		for j, o := range s.FirewallRules {
			if j < i && o.sameMatch(r) {
				return fmt.Errorf("%w: firewall rule %d matches the same packets", ErrExists, o.ID)
			}
			if o.Network.Bits() <= r.Network.Bits() && o.Network.Contains(r.Network.Addr()) {
				covering++
			}
		}
		if l.RulesPerPrefix > 0 && covering > l.RulesPerPrefix {
			return fmt.Errorf("%w: limit reached: %d rules would cover %s; at most %d may overlap (MAX_RULES_PER_PREFIX)",
				ErrConflict, covering, r.Network, l.RulesPerPrefix)
		}
	}
	pids := map[uint32]bool{}
	for i, d := range s.DosPolicies {
		if err := d.validate(); err != nil {
			return err
		}
		if d.ID == 0 || d.ID >= s.NextPolicyID || pids[d.ID] {
			return fmt.Errorf("dos policy id %d out of range or used twice", d.ID)
		}
		pids[d.ID] = true
		for _, o := range s.DosPolicies[:i] {
			if o.Proto == d.Proto && o.Type == d.Type {
				return fmt.Errorf("%w: dos policy %d already limits %s %s", ErrExists, o.ID, d.Proto, d.Type)
			}
		}
	}
	return nil
}
