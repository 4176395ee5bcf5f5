package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// bracket writes an address as a URL host: [2001:db8::1], or 10.0.0.1.
func bracket(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// snat6 is the IPv6 full-NAT address the dual-stack tests give the LB.
var snat6 = netip.MustParseAddr("2001:db8:2::100")

// startIPv6Lab is a dual-stack two-arm lab whose daemon serves, on VIP6,
// HTTP 80, UDP 9090 and TCP 3307 -> 3306 (services 1-3) over the IPv6
// backends in nat mode, or in mode, with an IPv6 SNAT address for full-NAT
// services.
func startIPv6Lab(t *testing.T, cfg testenv.LabConfig, mode ...string) (*testenv.Lab, *testenv.Daemon) {
	t.Helper()
	cfg.IPv6, cfg.Topology = true, testenv.TwoArm
	lab, _ := labWithServers(t, cfg)
	if _, err := lab.LB.IP("addr", "add", snat6.String()+"/64", "dev", lab.BackendIf, "nodad"); err != nil {
		t.Fatal(err)
	}
	vip, b1, b2 := bracket(lab.VIP6), bracket(lab.BackendAddrs6[0]), bracket(lab.BackendAddrs6[1])
	// SNAT ports apart from the kernel's ephemeral ones (32768-60999): the
	// default range would reserve them all, and the daemon's own health
	// probes could not connect.
	snatFlags := []string{"--snat-addr", snat6.String(), "--snat-ports", "61000-65000"}
	var d *testenv.Daemon
	if len(mode) == 0 || mode[0] == "nat" {
		d = startDaemonIn(t, lab, t.TempDir(), append(snatFlags,
			"--service", fmt.Sprintf("tcp/%s:80=%s,%s", vip, b1, b2),
			"--service", fmt.Sprintf("udp/%s:9090=%s,%s", vip, b1, b2),
			"--service", fmt.Sprintf("tcp/%s:3307=%s:3306,%s:3306", vip, b1, b2))...)
	} else {
		d = startDaemonIn(t, lab, t.TempDir(), snatFlags...)
		for i, svc := range []struct{ port, proto, backendPort string }{{"80", "tcp", "80"}, {"9090", "udp", "9090"}, {"3307", "tcp", "3306"}} {
			cli(t, d, "service", "add", "--vip", vip+":"+svc.port, "--proto", svc.proto, "--mode", mode[0])
			for _, b := range []string{b1, b2} {
				cli(t, d, "backend", "add", "--service", fmt.Sprint(i+1), "--address", b+":"+svc.backendPort)
			}
		}
	}
	for _, cl := range lab.Clients {
		if err := testenv.WaitFor(10*time.Second, func() error {
			_, err := cl.UDPRequest(vip+":9090", "ready?", 300*time.Millisecond)
			return err
		}); err != nil {
			t.Fatalf("IPv6 VIP never answered: %v", err)
		}
	}
	for id := uint32(1); id <= 3; id++ {
		waitNewFlows(t, d, id)
	}
	return lab, d
}

// The forward scenarios over IPv6 (issue 13) in nat and fullnat: 100 HTTP
// connections, UDP, port mapping, drain without moving flows. In fullnat
// the backends see the IPv6 SNAT address. Next to the nat run: an IPv4
// service on the same daemon, echo to the VIP, NDP on both interfaces
// while XDP is attached.
func TestIPv6Forward(t *testing.T) {
	for _, mode := range []string{"nat", "fullnat"} {
		t.Run(mode, func(t *testing.T) {
			lab, d := startIPv6Lab(t, testenv.LabConfig{Backends: 2}, mode)
			forward6(t, lab, d)
			if mode == "fullnat" {
				fullNATPeers6(t, lab, d)
			} else {
				dualStack(t, lab, d)
				health6(t, d)
				echoAndNDP(t, lab, d)
			}
			stopAndCheckDetached(t, lab, d)
		})
	}
}

func forward6(t *testing.T, lab *testenv.Lab, d *testenv.Daemon) {
	vip := bracket(lab.VIP6)
	t.Run("http 100 connections over 2 backends", func(t *testing.T) {
		checkHTTPSpreadTo(t, lab, vip, 100, 30)
	})
	t.Run("udp request/response", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 40; i++ {
			payload := fmt.Sprintf("req-%d", i)
			got, err := lab.Client.UDPRequest(vip+":9090", payload, 2*time.Second)
			name, echoed, _ := strings.Cut(got, ":")
			if err != nil || echoed != payload {
				t.Fatalf("udp request %d: %q %v", i, got, err)
			}
			seen[name]++
		}
		if seen["backend1"] == 0 || seen["backend2"] == 0 {
			t.Fatalf("udp flows all went to one backend: %v", seen)
		}
	})
	t.Run("bulk transfer through the express path", func(t *testing.T) {
		expressTransfer(t, lab, d, vip)
	})
	t.Run("tcp port mapping 3307 to 3306", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			c, err := dialEcho(t, lab, vip+":3307")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.roundTrip(strings.Repeat("x", 3000)); err != nil {
				t.Fatal(err)
			}
			c.conn.Close()
		}
	})
	t.Run("drain moves no established flow", func(t *testing.T) {
		var conns []*echoConn
		for i := 0; i < 20; i++ {
			c, err := dialEcho(t, lab, vip+":3307")
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		var id uint32
		for _, b := range backendsJSON(t, d) {
			if b.ServiceID == 3 && b.Address == bracket(lab.BackendAddrs6[0])+":3306" {
				id = b.ID
			}
		}
		cli(t, d, "backend", "drain", "--id", fmt.Sprint(id))
		if seen := newConnections(t, lab, vip+":3307", 20); seen["backend1"] != 0 {
			t.Fatalf("drained backend got new connections: %v", seen)
		}
		for i, c := range conns {
			if err := c.roundTrip(fmt.Sprintf("after drain %d", i)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// fullNATPeers6: the backends see every client as the IPv6 SNAT address,
// and conntrack shows it.
func fullNATPeers6(t *testing.T, lab *testenv.Lab, d *testenv.Daemon) {
	client := lab.Client.HTTPClient(3 * time.Second)
	for i := 0; i < 10; i++ {
		resp, err := client.Get("http://" + bracket(lab.VIP6) + "/peer")
		if err != nil {
			t.Fatal(err)
		}
		peer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ap, err := netip.ParseAddrPort(string(peer)); err != nil || ap.Addr() != snat6 {
			t.Fatalf("a full-NAT backend saw the client as %q, want %s", peer, snat6)
		}
	}
	snat := 0
	for _, f := range cliJSON[[]api.Flow](t, d, "conntrack", "get") {
		if strings.HasPrefix(f.SNAT, bracket(snat6)+":") {
			snat++
		}
	}
	if snat == 0 {
		t.Fatal("no conntrack entry shows the SNAT address")
	}
}

// dualStack adds an IPv4 service (service 4) beside the IPv6 ones.
func dualStack(t *testing.T, lab *testenv.Lab, d *testenv.Daemon) {
	cli(t, d, "service", "add", "--vip", lab.VIP.String()+":80")
	for _, b := range lab.BackendAddrs {
		cli(t, d, "backend", "add", "--service", "4", "--address", b.String())
	}
	waitNewFlows(t, d, 4)
	checkHTTPSpread(t, lab, 20, 3)
	if _, err := d.CLI("backend", "add", "--service", "4", "--address", bracket(lab.BackendAddrs6[0])+":80"); err == nil ||
		!strings.Contains(err.Error(), "is IPv6 but service 10.0.100.1:80/tcp is IPv4") {
		t.Fatalf("an IPv6 backend of an IPv4 service: %v", err)
	}
}

// health6: HTTP checks of the IPv6 backends from the LB's own IPv6
// address: their answers reach the kernel (not the workers). A port no one
// serves takes both out; the right one brings them back.
func health6(t *testing.T, d *testenv.Daemon) {
	status := func(want string) error {
		for _, b := range backendsJSON(t, d) {
			if b.ServiceID == 1 && b.Health != want {
				return fmt.Errorf("backend %s: %s, want %s", b.Address, b.Health, want)
			}
		}
		return nil
	}
	check := []string{"--health", "http", "--health-path", "/who", "--health-interval", "200ms", "--health-timeout", "150ms",
		"--health-rise", "1", "--health-fall", "1"}
	cli(t, d, append([]string{"service", "health", "--id", "1", "--health-port", "81"}, check...)...)
	if err := testenv.WaitFor(5*time.Second, func() error { return status("unhealthy") }); err != nil {
		t.Fatal(err)
	}
	cli(t, d, append([]string{"service", "health", "--id", "1"}, check...)...)
	if err := testenv.WaitFor(5*time.Second, func() error { return status("healthy") }); err != nil {
		t.Fatal(err)
	}
	waitNewFlows(t, d, 1)
}

func echoAndNDP(t *testing.T, lab *testenv.Lab, d *testenv.Daemon) {
	vip := bracket(lab.VIP6)
	for i := 0; i < 3; i++ {
		if err := lab.Client.Ping(lab.VIP6, time.Second); err != nil {
			t.Fatalf("ping VIP6: %v", err)
		}
	}
	// Forget every neighbour; the kernel must learn them again through
	// NDP while XDP is attached to both interfaces.
	for _, c := range []struct {
		ns  *testenv.NS
		dev string
	}{{lab.Client, "eth0"}, {lab.LB, lab.UpstreamIf}, {lab.LB, lab.BackendIf}, {lab.Backends[0], "eth0"}} {
		if _, err := c.ns.IP("-6", "neigh", "flush", "dev", c.dev); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{lab.UpstreamIf, lab.BackendIf} {
		if xdpProgID(t, lab, name) == 0 {
			t.Fatalf("no XDP program on %s", name)
		}
	}
	if err := lab.Client.Ping(testenv.LBUp6, 2*time.Second); err != nil {
		t.Fatalf("client -> lb upstream address: %v", err)
	}
	if err := lab.LB.Ping(lab.BackendAddrs6[0], 2*time.Second); err != nil {
		t.Fatalf("lb -> backend: %v", err)
	}
	out, _ := lab.Client.IP("-6", "neigh", "show", "dev", "eth0")
	if !strings.Contains(out, testenv.LBUp6.String()) {
		t.Fatalf("client neighbours after NDP: %q", out)
	}
	// The daemon asks for its backends' entries again (managed, over NDP).
	time.Sleep(2200 * time.Millisecond) // two refreshes: the loss is seen, then the new entry
	waitNewFlows(t, d, 1)
	checkHTTPSpreadTo(t, lab, vip, 20, 3)
	st := cliJSON[api.Stats](t, d, "stat")
	if st.Dataplane.EchoReplies < 3 || st.Protocols["tcp6"].Packets == 0 || st.Protocols["udp6"].Packets == 0 ||
		st.Protocols["icmpv6"].Packets == 0 {
		t.Fatalf("stat: echo replies %d, protocols %v", st.Dataplane.EchoReplies, st.Protocols)
	}
}

// Firewall and DoS over IPv6 with exact counters (issue 13): rules on
// IPv6 prefixes, a policy blocking an IPv6 source, IPv4 untouched.
func TestIPv6Filters(t *testing.T) {
	lab, d := startIPv6Lab(t, testenv.LabConfig{Backends: 2, Clients: 2})
	vip := bracket(lab.VIP6)
	c1, c2 := lab.Clients[0], lab.Clients[1]

	out := cli(t, d, "fw", "add", "--network", lab.ClientAddrs6[0].String()+"/128", "--protocol", "UDP", "--dst-port", "9090")
	if out != "rule 1 added: deny udp from 2001:db8:1::2/128 src ports any dst ports 9090\n" {
		t.Fatalf("fw add printed %q", out)
	}
	checkUDPDenied(t, d, c1, c2, vip, "2001:db8:1::2/128")
	// A /64 for ICMPv6: pings from either client are dropped, in the kernel too.
	cli(t, d, "fw", "add", "-n", "2001:db8:1::/64", "-t", "icmpv6")
	for _, cl := range lab.Clients {
		if err := cl.Ping(lab.VIP6, 300*time.Millisecond); err == nil {
			t.Fatal("denied echo answered")
		}
	}
	if r := fwRules(t, d); r[1].DroppedPackets != 2 || r[0].DroppedPackets != deniedUDP {
		t.Fatalf("rule counters %+v", r)
	}
	if _, err := d.CLI("fw", "add", "-n", "2001:db8:1::/64", "-t", "icmp"); err == nil || !strings.Contains(err.Error(), "IPv6 icmpv6") {
		t.Fatalf("icmp on an IPv6 network: %v", err)
	}
	cli(t, d, "fw", "delete", "--id", "1")
	cli(t, d, "fw", "delete", "--id", "2")
	if err := udpAsk(c1, vip); err != nil {
		t.Fatalf("UDP after rule deletion: %v", err)
	}

	// DoS: more than 10 UDP packets/s from one IPv6 source blocks it. 50
	// datagrams sent in well under a second: exactly 40 are dropped.
	cli(t, d, "dos", "add", "--protocol", "udp", "--limit", "10", "--block", "30s")
	conn, err := c1.DialContext(context.Background(), "udp", vip+":9090")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := conn.Write([]byte("flood")); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	var ps []api.DosPolicy
	if err := testenv.WaitFor(5*time.Second, func() error {
		ps = cliJSON[[]api.DosPolicy](t, d, "dos", "get")
		if len(ps) != 1 || ps[0].DroppedPackets != 40 {
			return fmt.Errorf("policy %+v", ps)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ps[0].Status != "triggered" || len(ps[0].Blocked) != 1 || ps[0].Blocked[0].Address != lab.ClientAddrs6[0].String() {
		t.Fatalf("policy %+v", ps[0])
	}
	if err := udpAsk(c1, vip); err == nil {
		t.Fatal("blocked IPv6 source answered")
	}
	if err := udpAsk(c2, vip); err != nil {
		t.Fatalf("other IPv6 source: %v", err)
	}
	cli(t, d, "dos", "delete", "--id", "1")
	if err := udpAsk(c1, vip); err != nil {
		t.Fatalf("released source: %v", err)
	}
	stopAndCheckDetached(t, lab, d)
}

// Path MTU over IPv6 (issue 13): the LB's backend link is 1400 while the
// backends' are 1500. 10 MiB down and 10 MiB up through the VIP, in nat
// and fullnat, arrive whole: the load balancer answers the client's
// oversized packets with packet-too-big from the VIP (captured at the
// worker) and clamps forwarded SYNs' MSS to its link.
func TestIPv6PathMTU(t *testing.T) {
	lab, d := startIPv6Lab(t, testenv.LabConfig{Backends: 2, BackendLinkMTU: 1400})
	vip := bracket(lab.VIP6)
	cli(t, d, "service", "add", "--vip", vip+":8080", "--mode", "fullnat")
	cli(t, d, "backend", "add", "--service", "4", "--address", bracket(lab.BackendAddrs6[0])+":80")
	waitNewFlows(t, d, 1)
	waitNewFlows(t, d, 4)
	for _, host := range []string{vip, vip + ":8080"} {
		t.Run(host, func(t *testing.T) {
			// A PMTU learned by the previous run would hide this one's error.
			if _, err := lab.Client.IP("-6", "route", "flush", "cache"); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "icmp.pcapng")
			dump, out := startDump(t, d, "-w", file, "--at", "worker", "--proto", "icmpv6", "--host", lab.ClientAddrs6[0].String(),
				"--count", "1", "--duration", "60s")
			transferBothWays(t, lab.Client, host, 10<<20)
			if err := waitCmd(dump, 10*time.Second); err != nil {
				t.Fatalf("no ICMPv6 captured by the workers: %v %s", err, out)
			}
			var p packet.Packet
			if r := packet.Decode(oneWorkerPacket(t, file, "answer"), &p); r != packet.OK {
				t.Fatalf("captured packet: %v", r)
			}
			if p.ICMP.Type != packet.ICMP6TooBig || p.Src.IP() != lab.VIP6 || p.Dst.IP() != lab.ClientAddrs6[0] ||
				binary.BigEndian.Uint32(p.Frame[p.L4+4:]) != 1400 {
				t.Fatalf("the LB's error: type %d %v -> %v, frame %x", p.ICMP.Type, p.Src, p.Dst, p.Frame[:min(len(p.Frame), 70)])
			}
		})
	}
	if st := cliJSON[api.Stats](t, d, "stat"); st.Dataplane.FragNeededSent < 2 {
		t.Fatalf("packet-too-big sent %d times", st.Dataplane.FragNeededSent)
	}
	stopAndCheckDetached(t, lab, d)
}

// waitCmd waits for cmd to exit, at most timeout.
func waitCmd(cmd *exec.Cmd, timeout time.Duration) error {
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %s", timeout)
	}
}

// waitNewFlows waits until every backend of service id takes new flows
// (its next hop resolved).
func waitNewFlows(t *testing.T, d *testenv.Daemon, id uint32) {
	t.Helper()
	if err := testenv.WaitFor(5*time.Second, func() error {
		for _, b := range backendsJSON(t, d) {
			if b.ServiceID == id && !b.NewFlows {
				return fmt.Errorf("backend %s takes no new flows: %s", b.Address, b.NextHop)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
