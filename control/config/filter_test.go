package config

import (
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

func TestParsePortRange(t *testing.T) {
	for in, want := range map[string]PortRange{"": AnyPort, "any": AnyPort, "0": AnyPort, "22": {22, 22},
		"1000-2000": {1000, 2000}, "65535": {65535, 65535}} {
		got, err := ParsePortRange(in)
		if err != nil || got != want {
			t.Errorf("ParsePortRange(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"2000-1000", "65536", "-5", "a", "0-10", "10-"} {
		if _, err := ParsePortRange(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePortRange(%q) = %v, want ErrInvalid", in, err)
		}
	}
	if AnyPort.String() != "any" || (PortRange{22, 22}).String() != "22" || (PortRange{1, 9}).String() != "1-9" {
		t.Error("PortRange.String")
	}
}

func fw(cidr, proto string, dst PortRange) FirewallRule {
	p, err := ParseFilterProto(proto)
	if err != nil {
		p = 47 // a protocol the rules do not know
	}
	return FirewallRule{Network: netip.MustParsePrefix(cidr), Proto: p, SrcPorts: AnyPort, DstPorts: dst}
}

func TestFirewallRulesAndPolicies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path)
	var r FirewallRule
	var d DosPolicy
	err := change(s, func(st *State) (err error) {
		if r, err = st.AddFirewallRule(fw("10.0.0.0/8", "tcp", PortRange{22, 22})); err != nil {
			return err
		}
		d, err = st.AddDosPolicy(DosPolicy{Proto: ipproto.TCP, Type: "syn", LimitPPS: 100, BlockSeconds: 10})
		return err
	})
	if err != nil || r.ID != 1 || d.ID != 1 {
		t.Fatalf("%+v %+v %v", r, d, err)
	}
	if m, v := d.TCPFlags(); m != 0x12 || v != 0x02 {
		t.Fatalf("syn flags %#x/%#x", m, v)
	}
	before := s.State()
	addRule := func(r FirewallRule) func(*State) error {
		return func(st *State) error { _, err := st.AddFirewallRule(r); return err }
	}
	addPolicy := func(d DosPolicy) func(*State) error {
		return func(st *State) error { _, err := st.AddDosPolicy(d); return err }
	}
	for _, c := range []struct {
		name string
		do   func(*State) error
		want string
	}{
		{"host bits", addRule(fw("10.0.0.1/8", "any", AnyPort)), "did you mean 10.0.0.0/8"},
		{"mapped", addRule(fw("::ffff:10.0.0.0/104", "any", AnyPort)), "IPv4 or IPv6 CIDR"},
		{"ipv6 host bits", addRule(fw("2001:db8::1/32", "any", AnyPort)), "did you mean 2001:db8::/32"},
		{"icmp from ipv6", addRule(fw("2001:db8::/32", "icmp", AnyPort)), "IPv6 icmpv6"},
		{"icmpv6 from ipv4", addRule(fw("10.0.0.0/8", "icmpv6", AnyPort)), "IPv4 carries icmp"},
		{"icmpv6 ports", addRule(fw("2001:db8::/32", "icmpv6", PortRange{1, 1})), "icmpv6 has no ports"},
		{"proto", addRule(fw("10.0.0.0/8", "gre", AnyPort)), "any, tcp, udp, icmp or icmpv6"},
		{"icmp ports", addRule(fw("10.0.0.0/8", "icmp", PortRange{1, 1})), "icmp has no ports"},
		{"duplicate rule", addRule(fw("10.0.0.0/8", "TCP", PortRange{22, 22})), "rule 1 matches the same packets"},
		{"unknown rule", func(st *State) error { return st.DeleteFirewallRule(9) }, "firewall rule 9"},
		{"dos proto", addPolicy(DosPolicy{Proto: ipproto.Any, Type: "any", LimitPPS: 1, BlockSeconds: 1}), "tcp, udp, icmp or icmpv6"},
		{"dos type", addPolicy(DosPolicy{Proto: ipproto.UDP, Type: "syn", LimitPPS: 1, BlockSeconds: 1}), "use any"},
		{"dos tcp type", addPolicy(DosPolicy{Proto: ipproto.TCP, Type: "urg", LimitPPS: 1, BlockSeconds: 1}), "syn, ack, fin, rst or any"},
		{"dos limit", addPolicy(DosPolicy{Proto: ipproto.TCP, Type: "ack", BlockSeconds: 1}), "limit"},
		{"dos block", addPolicy(DosPolicy{Proto: ipproto.TCP, Type: "ack", LimitPPS: 1}), "block time"},
		{"dos duplicate", addPolicy(DosPolicy{Proto: ipproto.TCP, Type: ParseDosType("SYN"), LimitPPS: 5, BlockSeconds: 5}), "policy 1 already limits tcp syn"},
		{"unknown policy", func(st *State) error { return st.DeleteDosPolicy(4) }, "dos policy 4"},
	} {
		if err := change(s, c.do); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if s.State() != before {
			t.Fatalf("%s changed the state", c.name)
		}
	}
	s.Close()
	again := open(t, path)
	if !reflect.DeepEqual(again.State(), before) {
		t.Fatalf("reload:\n%+v\nwant %+v", again.State(), before)
	}
	if err := change(again, func(st *State) error { return st.DeleteFirewallRule(1) }); err != nil {
		t.Fatal(err)
	}
	if err := change(again, func(st *State) error { return st.DeleteDosPolicy(1) }); err != nil {
		t.Fatal(err)
	}
}

func TestOverlapLimit(t *testing.T) {
	s := open(t, "")
	for i := 0; i < testLimits.RulesPerPrefix; i++ {
		if err := change(s, addRuleFn(fw("10.0.0.0/8", "tcp", PortRange{uint16(i + 1), uint16(i + 1)}))); err != nil {
			t.Fatal(err)
		}
	}
	// A /24 inside would be covered by the /8's rules plus itself.
	if err := change(s, addRuleFn(fw("10.1.2.0/24", "udp", AnyPort))); !errors.Is(err, ErrConflict) ||
		!strings.Contains(err.Error(), "MAX_RULES_PER_PREFIX") {
		t.Fatalf("overlapping rules beyond the limit: %v", err)
	}
	if err := change(s, addRuleFn(fw("192.168.0.0/16", "udp", AnyPort))); err != nil {
		t.Fatalf("disjoint rule refused: %v", err)
	}
}

func addRuleFn(r FirewallRule) func(*State) error {
	return func(st *State) error { _, err := st.AddFirewallRule(r); return err }
}
