package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// startFilterLab: two clients, two backends, HTTP 80 and UDP 9090 services.
func startFilterLab(t *testing.T) (*testenv.Lab, *testenv.Daemon) {
	t.Helper()
	lab, _ := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2, Clients: 2})
	vip := lab.VIP.String()
	d := startDaemonIn(t, lab, t.TempDir(), "--vip", vip+":80/tcp", "--vip", vip+":9090/udp",
		"--backend", lab.BackendAddrs[0].String(), "--backend", lab.BackendAddrs[1].String())
	for _, cl := range lab.Clients {
		if err := testenv.WaitFor(10*time.Second, func() error { return httpGet(cl, vip) }); err != nil {
			t.Fatal(err)
		}
	}
	return lab, d
}

func httpGet(cl *testenv.NS, vip string) error {
	resp, err := cl.HTTPClient(time.Second).Get("http://" + vip + "/who")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func udpAsk(cl *testenv.NS, vip string) error {
	_, err := cl.UDPRequest(vip+":9090", "hi", 300*time.Millisecond)
	return err
}

func fwRules(t *testing.T, d *testenv.Daemon) []api.FirewallRule {
	t.Helper()
	var rules []api.FirewallRule
	if err := json.Unmarshal([]byte(cli(t, d, "fw", "get", "--json")), &rules); err != nil {
		t.Fatal(err)
	}
	return rules
}

// deniedUDP is how many requests checkUDPDenied sends.
const deniedUDP = 7

// checkUDPDenied checks the one rule there is, which denies UDP 9090 from
// c1 (network): c1's requests go unanswered and each is counted by the
// rule; c2's UDP and c1's HTTP still work.
func checkUDPDenied(t *testing.T, d *testenv.Daemon, c1, c2 *testenv.NS, vip, network string) {
	t.Helper()
	for i := 0; i < deniedUDP; i++ {
		if err := udpAsk(c1, vip); err == nil {
			t.Fatalf("denied UDP request %d was answered", i)
		}
	}
	if err := udpAsk(c2, vip); err != nil {
		t.Fatalf("client 2 UDP: %v", err)
	}
	if err := httpGet(c1, vip); err != nil {
		t.Fatalf("client 1 HTTP (not denied): %v", err)
	}
	if r := fwRules(t, d); len(r) != 1 || r[0].DroppedPackets != deniedUDP || r[0].Network != network {
		t.Fatalf("rule counters %+v, want %d dropped by a rule on %s", r, deniedUDP, network)
	}
}

func TestFirewallRules(t *testing.T) {
	lab, d := startFilterLab(t)
	vip := lab.VIP.String()
	c1, c2 := lab.Clients[0], lab.Clients[1]

	// Rule 1: client 1 may not use UDP 9090; everything else still works.
	out := cli(t, d, "fw", "add", "--network", lab.ClientAddrs[0].String()+"/32", "--protocol", "udp", "--dst-port", "9090")
	if out != "rule 1 added: deny udp from 10.0.1.2/32 src ports any dst ports 9090\n" {
		t.Fatalf("fw add printed %q", out)
	}
	checkUDPDenied(t, d, c1, c2, vip, "10.0.1.2/32")

	// Rule 2: a whole CIDR loses TCP 80; the host address is untouched.
	cli(t, d, "fw", "add", "-n", "10.0.1.0/24", "-t", "tcp", "-d", "80-80")
	for _, cl := range lab.Clients {
		if err := httpGet(cl, vip); err == nil {
			t.Fatal("denied HTTP answered")
		}
	}
	if err := udpAsk(c2, vip); err != nil {
		t.Fatalf("client 2 UDP under the TCP rule: %v", err)
	}
	rules := fwRules(t, d)
	if rules[1].DroppedPackets < 2 || rules[0].DroppedPackets != deniedUDP {
		t.Fatalf("rule counters %+v", rules)
	}
	// A late SYN retransmission can be dropped between two reads, so the
	// stat total must lie between the rule totals read before and after.
	sum := func(rs []api.FirewallRule) uint64 { return rs[0].DroppedPackets + rs[1].DroppedPackets }
	var st api.Stats
	json.Unmarshal([]byte(cli(t, d, "stat", "--json")), &st)
	after := fwRules(t, d)
	if got := st.Drops["firewall"]; got < sum(rules) || got > sum(after) {
		t.Fatalf("stat firewall drops %d, rules counted %d then %d", got, sum(rules), sum(after))
	}

	// Deleting the rules restores traffic.
	cli(t, d, "fw", "delete", "--id", "2")
	cli(t, d, "fw", "delete", "--id", "1")
	if err := httpGet(c2, vip); err != nil {
		t.Fatalf("HTTP after rule deletion: %v", err)
	}
	if err := udpAsk(c1, vip); err != nil {
		t.Fatalf("UDP after rule deletion: %v", err)
	}
	if _, err := d.CLI("fw", "add", "-n", "10.0.1.2/24"); err == nil || !strings.Contains(err.Error(), "did you mean 10.0.1.0/24") {
		t.Fatalf("host bits: %v", err)
	}
	stopAndCheckDetached(t, lab, d)
}

func TestSynFloodTriggersPolicy(t *testing.T) {
	lab, d := startFilterLab(t)
	vip := lab.VIP.String()
	c1, c2 := lab.Clients[0], lab.Clients[1]
	out := cli(t, d, "dos", "add", "--protocol", "tcp", "--type", "syn", "--limit", "100", "--block", "30s")
	if out != "policy 1 added: tcp syn over 100 packets/s per source blocks it for 30s\n" {
		t.Fatalf("dos add printed %q", out)
	}
	// A bounded flood: 2000 SYNs from client 1's own address, new ports each.
	var syns [][]byte
	for i := 0; i < 2000; i++ {
		f := fixture.Frame{Src: lab.ClientAddrs[0], Dst: lab.VIP, Proto: fixture.ProtoTCP,
			SrcPort: uint16(20000 + i), DstPort: 80, TCPFlags: fixture.FlagSYN}
		syns = append(syns, f.Bytes()[14:])
	}
	// Bursts of 100: a veth ring holds 256 frames, and a flood lost before
	// XDP would not be counted.
	for i := 0; i < len(syns); i += 100 {
		if err := c1.SendIPv4(lab.VIP, syns[i:i+100]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	var ps []api.DosPolicy
	if err := testenv.WaitFor(5*time.Second, func() error {
		ps = nil
		json.Unmarshal([]byte(cli(t, d, "dos", "get", "--json")), &ps)
		if len(ps) != 1 || ps[0].Status != "triggered" {
			return fmt.Errorf("policy %+v", ps)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(ps[0].Blocked) != 1 || ps[0].Blocked[0].Address != lab.ClientAddrs[0].String() {
		t.Fatalf("blocked sources %+v", ps[0].Blocked)
	}
	// Within one second at most 100 SYNs pass (two windows if the flood
	// straddled a second boundary); the rest are dropped in-kernel.
	if ps[0].DroppedPackets < 2000-200 {
		t.Fatalf("only %d of 2000 SYNs dropped", ps[0].DroppedPackets)
	}
	if !strings.Contains(cli(t, d, "dos", "get"), "10.0.1.2 (") {
		t.Fatal("dos get table does not show the blocked source")
	}
	if err := httpGet(c1, vip); err == nil {
		t.Fatal("blocked source still connects")
	}
	for i := 0; i < 20; i++ {
		if err := httpGet(c2, vip); err != nil {
			t.Fatalf("second client connection %d: %v", i, err)
		}
	}
	var st api.Stats
	json.Unmarshal([]byte(cli(t, d, "stat", "--json")), &st)
	if st.Drops["dos"] < ps[0].DroppedPackets {
		t.Fatalf("stat dos drops %d < policy drops %d", st.Drops["dos"], ps[0].DroppedPackets)
	}
	// Deleting the policy releases the source at once.
	cli(t, d, "dos", "delete", "--id", "1")
	if err := httpGet(c1, vip); err != nil {
		t.Fatalf("released source: %v", err)
	}
	stopAndCheckDetached(t, lab, d)
}
