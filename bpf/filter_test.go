package bpf_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

const xdpDrop = 1

func load(t *testing.T) *bpf.Program {
	t.Helper()
	testenv.RequireRoot(t)
	prog, err := bpf.Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

// pkt is a packet from src to the VIP of src's family.
func pkt(src string, proto ipproto.Proto, sport, dport uint16, flags uint8) []byte {
	a, dst := netip.MustParseAddr(src), fixture.VIP
	if a.Is6() {
		dst = fixture.VIP6
	}
	return fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: a,
		Dst: dst, Proto: proto, SrcPort: sport, DstPort: dport, TCPFlags: flags}.Bytes()
}

func rule(slot uint32, cidr string, proto ipproto.Proto, sport, dport [2]uint16) bpf.FirewallRule {
	return bpf.FirewallRule{Slot: slot, Prefix: netip.MustParsePrefix(cidr), Proto: proto,
		SrcFrom: sport[0], SrcTo: sport[1], DstFrom: dport[0], DstTo: dport[1]}
}

var anyPort = [2]uint16{0, 65535}

// fwCase is a packet and the verdict the rules must give it: dropped by
// the rule in slot, or passed.
type fwCase struct {
	name string
	pkt  []byte
	drop bool
	slot uint32
}

// checkFirewall runs the cases through prog and checks each verdict and
// each of the slots' drop counts; it returns how many were dropped.
func checkFirewall(t *testing.T, prog *bpf.Program, slots int, cases []fwCase) uint64 {
	t.Helper()
	want := map[uint32]uint64{}
	var dropped uint64
	for _, c := range cases {
		if ret := run(t, prog, c.pkt); (ret == xdpDrop) != c.drop {
			t.Errorf("%s: verdict %d, want drop=%v", c.name, ret, c.drop)
		}
		if c.drop {
			want[c.slot]++
			dropped++
		}
	}
	got, err := prog.FirewallDrops()
	if err != nil {
		t.Fatal(err)
	}
	for slot := uint32(0); slot < uint32(slots); slot++ {
		if got[slot].Packets != want[slot] {
			t.Errorf("slot %d counted %d drops, want %d", slot, got[slot].Packets, want[slot])
		}
	}
	return dropped
}

func TestFirewallMatching(t *testing.T) {
	prog := load(t)
	rules := []bpf.FirewallRule{
		rule(0, "10.1.0.0/16", fixture.ProtoTCP, anyPort, [2]uint16{8000, 9000}), // port range bounds
		rule(1, "10.1.2.0/24", fixture.ProtoUDP, [2]uint16{53, 53}, anyPort),     // nested in slot 0's prefix
		rule(2, "10.9.9.9/32", 0, anyPort, anyPort),                              // one host, every protocol
		rule(3, "0.0.0.0/0", fixture.ProtoTCP, anyPort, [2]uint16{23, 23}),       // everyone, telnet
		rule(4, "10.1.2.0/24", fixture.ProtoICMP, anyPort, anyPort),              // icmp from the /24
	}
	if err := prog.SetFirewall(rules); err != nil {
		t.Fatal(err)
	}
	dropped := checkFirewall(t, prog, len(rules), []fwCase{
		{"dport at lower bound", pkt("10.1.5.5", fixture.ProtoTCP, 1000, 8000, 0), true, 0},
		{"dport at upper bound", pkt("10.1.5.5", fixture.ProtoTCP, 1000, 9000, 0), true, 0},
		{"dport below range", pkt("10.1.5.5", fixture.ProtoTCP, 1000, 7999, 0), false, 0},
		{"dport above range", pkt("10.1.5.5", fixture.ProtoTCP, 1000, 9001, 0), false, 0},
		{"udp port ok for tcp rule", pkt("10.1.5.5", fixture.ProtoUDP, 1000, 8500, 0), false, 0},
		{"/16 rule seen through longer /24 match", pkt("10.1.2.7", fixture.ProtoTCP, 1000, 8500, 0), true, 0},
		{"/24 udp rule sport bound", pkt("10.1.2.7", fixture.ProtoUDP, 53, 9999, 0), true, 1},
		{"/24 udp rule other sport", pkt("10.1.2.7", fixture.ProtoUDP, 54, 9999, 0), false, 0},
		{"/24 rule outside its prefix", pkt("10.1.3.7", fixture.ProtoUDP, 53, 9999, 0), false, 0},
		{"/32 anyPort protocol", pkt("10.9.9.9", fixture.ProtoUDP, 1, 2, 0), true, 2},
		{"/32 neighbour", pkt("10.9.9.8", fixture.ProtoUDP, 1, 2, 0), false, 0},
		{"/0 telnet from anywhere", pkt("192.0.2.1", fixture.ProtoTCP, 1000, 23, 0), true, 3},
		{"/0 telnet from the /24 too", pkt("10.1.2.7", fixture.ProtoTCP, 1000, 23, 0), true, 3},
		{"icmp rule", pkt("10.1.2.7", fixture.ProtoICMP, 0, 0, 0), true, 4},
		{"icmp not matched by port rules", pkt("10.1.5.5", fixture.ProtoICMP, 0, 0, 0), false, 0},
		{"/32 anyPort matches icmp", pkt("10.9.9.9", fixture.ProtoICMP, 0, 0, 0), true, 2},
	})
	if v, _ := prog.VerdictStats(); v["fw_drop"].Packets != dropped {
		t.Errorf("fw_drop verdicts %d, want %d", v["fw_drop"].Packets, dropped)
	}

	// Deleting the /16 rule: the /24 prefix must stop seeing it.
	if err := prog.SetFirewall(append(rules[1:2:2], rules[2:]...)); err != nil {
		t.Fatal(err)
	}
	if run(t, prog, pkt("10.1.2.7", fixture.ProtoTCP, 1000, 8500, 0)) == xdpDrop {
		t.Error("deleted rule still drops")
	}
	if run(t, prog, pkt("10.1.2.7", fixture.ProtoUDP, 53, 1, 0)) != xdpDrop {
		t.Error("kept rule stopped dropping")
	}
	if err := prog.SetFirewall(nil); err != nil {
		t.Fatal(err)
	}
	if run(t, prog, pkt("10.9.9.9", fixture.ProtoUDP, 1, 2, 0)) == xdpDrop {
		t.Error("empty rule set still drops")
	}
}

func TestFirewallLimits(t *testing.T) {
	prog := load(t)
	var rules []bpf.FirewallRule
	for i := 0; i <= bpf.MaxRulesPerPrefix; i++ {
		rules = append(rules, rule(uint32(i), "10.0.0.0/8", 0, anyPort, [2]uint16{uint16(i), uint16(i)}))
	}
	if err := prog.SetFirewall(rules); err == nil {
		t.Fatalf("%d rules on one prefix accepted", len(rules))
	}
	if err := prog.SetFirewall(rules[:bpf.MaxRulesPerPrefix]); err != nil {
		t.Fatal(err)
	}
}

func TestDosPolicy(t *testing.T) {
	prog := load(t)
	const limit = 20
	err := prog.SetDosPolicies([]bpf.DosPolicy{{Slot: 3, Proto: fixture.ProtoTCP,
		FlagsMask: fixture.FlagSYN | fixture.FlagACK, FlagsValue: fixture.FlagSYN, LimitPPS: limit, Block: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	syn := pkt("10.5.0.1", fixture.ProtoTCP, 1000, 80, fixture.FlagSYN)
	ack := pkt("10.5.0.1", fixture.ProtoTCP, 1000, 80, fixture.FlagACK)
	other := pkt("10.5.0.2", fixture.ProtoTCP, 1000, 80, fixture.FlagSYN)
	for i := 0; i < limit; i++ {
		if run(t, prog, syn) == xdpDrop {
			t.Fatalf("SYN %d of %d dropped", i+1, limit)
		}
	}
	for i := 0; i < 50; i++ { // ACKs do not count towards a SYN policy
		if run(t, prog, ack) == xdpDrop {
			t.Fatal("ACK dropped before the source was blocked")
		}
	}
	if run(t, prog, syn) != xdpDrop {
		t.Fatal("SYN over the limit passed")
	}
	if run(t, prog, ack) != xdpDrop {
		t.Fatal("blocked source's ACK passed: a blocked source loses the whole protocol")
	}
	if run(t, prog, pkt("10.5.0.1", fixture.ProtoUDP, 1, 2, 0)) == xdpDrop {
		t.Fatal("blocked source's UDP dropped by a TCP policy")
	}
	if run(t, prog, other) == xdpDrop {
		t.Fatal("another source dropped")
	}
	blocked, err := prog.DosBlocked()
	if err != nil || len(blocked) != 1 || blocked[0].Addr != netip.MustParseAddr("10.5.0.1") || blocked[0].Slot != 3 ||
		blocked[0].Remaining <= 50*time.Second {
		t.Fatalf("blocked %+v %v", blocked, err)
	}
	drops, _ := prog.DosDrops()
	if drops[3].Packets != 2 {
		t.Fatalf("policy drops %+v, want 2", drops)
	}
	// Removing the policy forgets its blocks.
	if err := prog.SetDosPolicies(nil); err != nil {
		t.Fatal(err)
	}
	if run(t, prog, syn) == xdpDrop {
		t.Fatal("removed policy still blocks")
	}
	if b, _ := prog.DosBlocked(); len(b) != 0 {
		t.Fatalf("blocks left after removal: %+v", b)
	}
}

func TestDumpCapturesMatchingPackets(t *testing.T) {
	prog := load(t)
	d, err := prog.StartDump(bpf.DumpFilter{Port: 80, Snaplen: 40})
	if err != nil {
		t.Fatal(err)
	}
	syn := pkt("10.1.1.1", fixture.ProtoTCP, 1000, 80, fixture.FlagSYN)
	run(t, prog, pkt("10.1.1.1", fixture.ProtoUDP, 1000, 9090, 0)) // filtered out
	run(t, prog, syn)
	got := make(chan bpf.DumpRecord, 1)
	go func() {
		r, err := d.Read()
		if err == nil {
			got <- r
		}
	}()
	select {
	case r := <-got:
		if r.Verdict != bpf.VerdictPass || r.PktLen != len(syn) || string(r.Data) != string(syn[:40]) {
			t.Fatalf("record %+v", r)
		}
		if time.Since(r.Time) > time.Minute || time.Since(r.Time) < 0 {
			t.Fatalf("timestamp %v", r.Time)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no record")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(); err != bpf.ErrDumpClosed {
		t.Fatalf("read after close: %v", err)
	}
}

// IPv6 rules live in their own trie; a rule of one family never matches
// the other's packets, and counts stay per rule.
func TestFirewallMatching6(t *testing.T) {
	prog := load(t)
	rules := []bpf.FirewallRule{
		rule(0, "2001:db8:1::/48", fixture.ProtoTCP, anyPort, [2]uint16{8000, 9000}),
		rule(1, "2001:db8:1:2::/64", fixture.ProtoUDP, [2]uint16{53, 53}, anyPort), // nested in slot 0's
		rule(2, "0.0.0.0/0", fixture.ProtoTCP, anyPort, [2]uint16{23, 23}),         // IPv4 only
		rule(3, "::/0", fixture.ProtoTCP, anyPort, [2]uint16{25, 25}),              // every IPv6 source
		rule(4, "2001:db8:9::9/128", fixture.ProtoICMPv6, anyPort, anyPort),
		rule(5, "10.0.0.0/8", 0, anyPort, anyPort),
	}
	if err := prog.SetFirewall(rules); err != nil {
		t.Fatal(err)
	}
	checkFirewall(t, prog, len(rules), []fwCase{
		{"/48 port range", pkt("2001:db8:1:5::5", fixture.ProtoTCP, 1000, 8000, 0), true, 0},
		{"/48 below range", pkt("2001:db8:1:5::5", fixture.ProtoTCP, 1000, 7999, 0), false, 0},
		{"/48 seen through /64", pkt("2001:db8:1:2::7", fixture.ProtoTCP, 1000, 8500, 0), true, 0},
		{"/64 udp sport", pkt("2001:db8:1:2::7", fixture.ProtoUDP, 53, 1, 0), true, 1},
		{"/64 udp outside", pkt("2001:db8:1:3::7", fixture.ProtoUDP, 53, 1, 0), false, 0},
		{"IPv4 /0 does not cover IPv6", pkt("2001:db8:7::1", fixture.ProtoTCP, 1000, 23, 0), false, 0},
		{"::/0 covers IPv6", pkt("2001:db8:7::1", fixture.ProtoTCP, 1000, 25, 0), true, 3},
		{"::/0 does not cover IPv4", pkt("192.0.2.1", fixture.ProtoTCP, 1000, 25, 0), false, 0},
		{"IPv4 /0 still covers IPv4", pkt("192.0.2.1", fixture.ProtoTCP, 1000, 23, 0), true, 2},
		{"icmpv6 /128", pkt("2001:db8:9::9", fixture.ProtoICMPv6, 0, 0, 0), true, 4},
		{"icmpv6 /128 neighbour", pkt("2001:db8:9::8", fixture.ProtoICMPv6, 0, 0, 0), false, 0},
		{"IPv6 with 10/8's low bits", pkt("::ffff:0:a00:1", fixture.ProtoUDP, 1, 2, 0), false, 0},
	})
	// A rule set without IPv6 rules empties the IPv6 trie.
	if err := prog.SetFirewall(rules[2:3]); err != nil {
		t.Fatal(err)
	}
	if run(t, prog, pkt("2001:db8:7::1", fixture.ProtoTCP, 1000, 25, 0)) == xdpDrop {
		t.Error("removed IPv6 rule still drops")
	}
}

func TestDosPolicy6(t *testing.T) {
	prog := load(t)
	const limit = 10
	if err := prog.SetDosPolicies([]bpf.DosPolicy{{Slot: 1, Proto: fixture.ProtoUDP, LimitPPS: limit, Block: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	flood := pkt("2001:db8:5::1", fixture.ProtoUDP, 1000, 53, 0)
	for i := 0; i < limit; i++ {
		if run(t, prog, flood) == xdpDrop {
			t.Fatalf("packet %d of %d dropped", i+1, limit)
		}
	}
	if run(t, prog, flood) != xdpDrop {
		t.Fatal("packet over the limit passed")
	}
	// Another IPv6 source, and the IPv4 source with the same low 32 bits.
	if run(t, prog, pkt("2001:db8:5::2", fixture.ProtoUDP, 1000, 53, 0)) == xdpDrop ||
		run(t, prog, pkt("0.0.0.1", fixture.ProtoUDP, 1000, 53, 0)) == xdpDrop {
		t.Fatal("another source dropped")
	}
	blocked, err := prog.DosBlocked()
	if err != nil || len(blocked) != 1 || blocked[0].Addr != netip.MustParseAddr("2001:db8:5::1") || blocked[0].Slot != 1 {
		t.Fatalf("blocked %+v %v", blocked, err)
	}
	if d, _ := prog.DosDrops(); d[1].Packets != 1 {
		t.Fatalf("drops %+v", d)
	}
	if err := prog.SetDosPolicies(nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := prog.DosBlocked(); len(b) != 0 {
		t.Fatalf("IPv6 blocks left after removal: %+v", b)
	}
}

func TestDumpFiltersIPv6Host(t *testing.T) {
	prog := load(t)
	d, err := prog.StartDump(bpf.DumpFilter{Host: netip.MustParseAddr("2001:db8:1::7"), Snaplen: 128})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	want := pkt("2001:db8:1::7", fixture.ProtoTCP, 1000, 80, fixture.FlagSYN)
	run(t, prog, pkt("2001:db8:1::8", fixture.ProtoTCP, 1000, 80, fixture.FlagSYN)) // another host
	run(t, prog, pkt("0.0.0.7", fixture.ProtoTCP, 1000, 80, fixture.FlagSYN))       // same low bits, IPv4
	run(t, prog, want)
	got := make(chan bpf.DumpRecord, 3)
	go func() {
		for {
			r, err := d.Read()
			if err != nil {
				return
			}
			got <- r
		}
	}()
	select {
	case r := <-got:
		if string(r.Data) != string(want) {
			t.Fatalf("captured %x, want %x", r.Data, want)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no record")
	}
}

// NDP from a prefix a rule denies icmpv6 (or a DoS policy limits) still
// reaches the kernel, as ARP does: the rule must not cut hosts off the
// link. An echo request from the same source is dropped.
func TestNDPIsNeverFiltered(t *testing.T) {
	prog := load(t)
	if err := prog.SetFirewall([]bpf.FirewallRule{rule(0, "2001:db8:1::/64", fixture.ProtoICMPv6, anyPort, anyPort)}); err != nil {
		t.Fatal(err)
	}
	if err := prog.SetDosPolicies([]bpf.DosPolicy{{Slot: 0, Proto: fixture.ProtoICMPv6, LimitPPS: 1, Block: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	for typ := uint8(133); typ <= 137; typ++ {
		ndp := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client6, Dst: fixture.Other6,
			Proto: fixture.ProtoICMPv6, TTL: 255, ICMP: &fixture.ICMPHeader{Type: typ}, Payload: fixture.Other6.AsSlice()}
		for range 3 {
			if got := run(t, prog, ndp.Bytes()); got != xdpPass {
				t.Fatalf("NDP type %d: action %d", typ, got)
			}
		}
	}
	echo := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client6, Dst: fixture.Other6,
		Proto: fixture.ProtoICMPv6}
	if run(t, prog, echo.Bytes()) != xdpDrop {
		t.Fatal("an echo request from the denied prefix passed")
	}
	if d, _ := prog.FirewallDrops(); d[0].Packets != 1 {
		t.Fatalf("rule counted %d", d[0].Packets)
	}
}
