package config

import (
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
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
	return FirewallRule{Network: netip.MustParsePrefix(cidr), Proto: proto, SrcPorts: AnyPort, DstPorts: dst}
}

func TestFirewallRulesAndPolicies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, _ := Open(path)
	r, err := s.AddFirewallRule(fw("10.0.0.0/8", "tcp", PortRange{22, 22}))
	if err != nil || r.ID != 1 {
		t.Fatalf("%+v %v", r, err)
	}
	d, err := s.AddDosPolicy(DosPolicy{Proto: "tcp", Type: "syn", LimitPPS: 100, BlockSeconds: 10})
	if err != nil || d.ID != 1 {
		t.Fatalf("%+v %v", d, err)
	}
	if m, v := d.TCPFlags(); m != 0x12 || v != 0x02 {
		t.Fatalf("syn flags %#x/%#x", m, v)
	}
	before := s.Snapshot()
	for _, c := range []struct {
		name string
		do   func() error
		want string
	}{
		{"host bits", func() error { _, err := s.AddFirewallRule(fw("10.0.0.1/8", "any", AnyPort)); return err }, "did you mean 10.0.0.0/8"},
		{"ipv6", func() error { _, err := s.AddFirewallRule(fw("::/0", "any", AnyPort)); return err }, "IPv4 CIDR"},
		{"proto", func() error { _, err := s.AddFirewallRule(fw("10.0.0.0/8", "gre", AnyPort)); return err }, "any, tcp, udp or icmp"},
		{"icmp ports", func() error { _, err := s.AddFirewallRule(fw("10.0.0.0/8", "icmp", PortRange{1, 1})); return err }, "icmp has no ports"},
		{"duplicate rule", func() error { _, err := s.AddFirewallRule(fw("10.0.0.0/8", "tcp", PortRange{22, 22})); return err }, "rule 1 matches the same packets"},
		{"unknown rule", func() error { return s.DeleteFirewallRule(9) }, "firewall rule 9"},
		{"dos proto", func() error {
			_, err := s.AddDosPolicy(DosPolicy{Proto: "sctp", Type: "any", LimitPPS: 1, BlockSeconds: 1})
			return err
		}, "tcp, udp or icmp"},
		{"dos type", func() error {
			_, err := s.AddDosPolicy(DosPolicy{Proto: "udp", Type: "syn", LimitPPS: 1, BlockSeconds: 1})
			return err
		}, "use any"},
		{"dos tcp type", func() error {
			_, err := s.AddDosPolicy(DosPolicy{Proto: "tcp", Type: "urg", LimitPPS: 1, BlockSeconds: 1})
			return err
		}, "syn, ack, fin, rst or any"},
		{"dos limit", func() error {
			_, err := s.AddDosPolicy(DosPolicy{Proto: "tcp", Type: "ack", BlockSeconds: 1})
			return err
		}, "limit"},
		{"dos block", func() error { _, err := s.AddDosPolicy(DosPolicy{Proto: "tcp", Type: "ack", LimitPPS: 1}); return err }, "block time"},
		{"dos duplicate", func() error {
			_, err := s.AddDosPolicy(DosPolicy{Proto: "tcp", Type: "syn", LimitPPS: 5, BlockSeconds: 5})
			return err
		}, "policy 1 already limits tcp syn"},
		{"unknown policy", func() error { return s.DeleteDosPolicy(4) }, "dos policy 4"},
	} {
		if err := c.do(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if !reflect.DeepEqual(s.Snapshot(), before) {
			t.Fatalf("%s changed the state", c.name)
		}
	}
	again, err := Open(path)
	if err != nil || !reflect.DeepEqual(again.Snapshot(), before) {
		t.Fatalf("reload: %v\n%+v\nwant %+v", err, again.Snapshot(), before)
	}
	if err := s.DeleteFirewallRule(1); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDosPolicy(1); err != nil {
		t.Fatal(err)
	}
}

func TestOverlapLimit(t *testing.T) {
	s, _ := Open("")
	for i := 0; i < MaxRulesPerPrefix; i++ {
		if _, err := s.AddFirewallRule(fw("10.0.0.0/8", "tcp", PortRange{uint16(i + 1), uint16(i + 1)})); err != nil {
			t.Fatal(err)
		}
	}
	// A /24 inside would be covered by 16 rules plus itself.
	if _, err := s.AddFirewallRule(fw("10.1.2.0/24", "udp", AnyPort)); !errors.Is(err, ErrConflict) {
		t.Fatalf("17 overlapping rules: %v", err)
	}
	if _, err := s.AddFirewallRule(fw("192.168.0.0/16", "udp", AnyPort)); err != nil {
		t.Fatalf("disjoint rule refused: %v", err)
	}
}
