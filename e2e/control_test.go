package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// echoConn is a long-lived TCP connection through the VIP to a backend's
// echo server, which greets with its name.
type echoConn struct {
	conn    net.Conn
	r       *bufio.Reader
	backend string
}

func dialEcho(t *testing.T, lab *testenv.Lab, addr string) (*echoConn, error) {
	t.Helper()
	conn, err := lab.Client.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(conn)
	name, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return &echoConn{conn: conn, r: r, backend: strings.TrimSpace(name)}, nil
}

// roundTrip checks the connection still reaches the same backend: a moved
// flow would meet a backend that does not know it and be reset.
func (e *echoConn) roundTrip(msg string) error {
	e.conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(e.conn, "%s\n", msg); err != nil {
		return err
	}
	got, err := e.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("connection to %s: %w", e.backend, err)
	}
	if got != msg+"\n" {
		return fmt.Errorf("connection to %s echoed %q", e.backend, got)
	}
	return nil
}

// startControlLab starts backends and a daemon with no services; the test
// configures it through the CLI. dir keeps the socket and state file.
func startControlLab(t *testing.T, backends int, dir string) (*testenv.Lab, *testenv.Daemon) {
	t.Helper()
	lab, _ := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: backends})
	return lab, startDaemonIn(t, lab, dir)
}

func startDaemonIn(t *testing.T, lab *testenv.Lab, dir string, extra ...string) *testenv.Daemon {
	t.Helper()
	d, err := testenv.StartDaemon(t, lab.LB, daemonBin, dir,
		append([]string{"--upstream", lab.UpstreamIf, "--backend-if", lab.BackendIf}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon output:\n%s", d.Output())
		}
	})
	if err := testenv.WaitFor(10*time.Second, func() error {
		if done, err := d.Exited(); done {
			return fmt.Errorf("daemon exited: %v", err)
		}
		_, err := d.CLI("service", "get")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return d
}

func cli(t *testing.T, d *testenv.Daemon, args ...string) string {
	t.Helper()
	out, err := d.CLI(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cliJSON runs a get command with --json and decodes its output.
func cliJSON[T any](t *testing.T, d *testenv.Daemon, args ...string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(cli(t, d, append(args, "--json")...)), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func backendsJSON(t *testing.T, d *testenv.Daemon) []api.Backend {
	t.Helper()
	return cliJSON[[]api.Backend](t, d, "backend", "get")
}

func TestDrainAndAddBackend(t *testing.T) {
	lab, d := startControlLab(t, 3, t.TempDir())
	vip := lab.VIP.String() + ":3307"
	if out := cli(t, d, "service", "add", "--vip", vip, "--proto", "tcp"); out != "service 1 added: "+vip+"/tcp nat, health check none\n" {
		t.Fatalf("service add printed %q", out)
	}
	for i := 0; i < 2; i++ {
		want := fmt.Sprintf("backend %d added to service 1: %s:3306 weight 1\n", i+1, lab.BackendAddrs[i])
		if out := cli(t, d, "backend", "add", "--service", "1", "--address", lab.BackendAddrs[i].String()+":3306"); out != want {
			t.Fatalf("backend add printed %q, want %q", out, want)
		}
	}
	if err := testenv.WaitFor(10*time.Second, func() error { _, err := dialEcho(t, lab, vip); return err }); err != nil {
		t.Fatal(err)
	}

	// 20 long-lived connections over backends 1 and 2.
	var conns []*echoConn
	for i := 0; i < 20; i++ {
		c, err := dialEcho(t, lab, vip)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	exchange := func(stage string) {
		t.Helper()
		for i, c := range conns {
			if err := c.roundTrip(fmt.Sprintf("%s %d", stage, i)); err != nil {
				t.Fatalf("%s: %v", stage, err)
			}
		}
	}
	exchange("before")

	t.Run("adding a third backend moves no established connection", func(t *testing.T) {
		cli(t, d, "backend", "add", "--service", "1", "--address", lab.BackendAddrs[2].String()+":3306")
		exchange("after add")
		// A new backend takes new flows once its next hop is resolved.
		if err := testenv.WaitFor(5*time.Second, func() error {
			if b := backendsJSON(t, d)[2]; !b.NewFlows {
				return fmt.Errorf("backend 3 takes no new flows yet: %s", b.NextHop)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		seen := newConnections(t, lab, vip, 30)
		if seen["backend3"] == 0 {
			t.Fatalf("new backend got no new connections: %v", seen)
		}
		exchange("after new connections")
	})

	t.Run("drain stops new connections, established continue", func(t *testing.T) {
		var onB1 *echoConn
		for _, c := range conns {
			if c.backend == "backend1" {
				onB1 = c
			}
		}
		if onB1 == nil {
			t.Fatal("no connection landed on backend1")
		}
		if out := cli(t, d, "backend", "drain", "--id", "1"); out != "backend 1 drained\n" {
			t.Fatalf("drain printed %q", out)
		}
		seen := newConnections(t, lab, vip, 30)
		if seen["backend1"] != 0 {
			t.Fatalf("drained backend got %d new connections", seen["backend1"])
		}
		if err := onB1.roundTrip("still here"); err != nil {
			t.Fatalf("established connection to the drained backend broke: %v", err)
		}
		exchange("after drain")
		bs := backendsJSON(t, d)
		if bs[0].Status != "drained" || bs[0].ActiveConns == 0 {
			t.Fatalf("backend 1 after drain: %+v", bs[0])
		}
	})
	stopAndCheckDetached(t, lab, d)
}

func newConnections(t *testing.T, lab *testenv.Lab, vip string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		c, err := dialEcho(t, lab, vip)
		if err != nil {
			t.Fatalf("new connection %d: %v", i, err)
		}
		seen[c.backend]++
		c.conn.Close()
	}
	t.Logf("%d new connections: %v", n, seen)
	return seen
}

// TestBadInputAndRestart: rejected changes name the problem and change
// nothing; a restarted daemon restores services and backends from its state
// file and forwards again.
func TestBadInputAndRestart(t *testing.T) {
	dir := t.TempDir()
	lab, d := startControlLab(t, 2, dir)
	vip := lab.VIP.String()
	cli(t, d, "service", "add", "--vip", vip+":9090", "--proto", "udp")
	cli(t, d, "service", "add", "--vip", vip+":80")
	cli(t, d, "backend", "add", "--service", "2", "--address", lab.BackendAddrs[0].String(), "--weight", "3")
	cli(t, d, "backend", "add", "--service", "2", "--address", lab.BackendAddrs[1].String())
	cli(t, d, "backend", "add", "--service", "1", "--address", lab.BackendAddrs[1].String())
	cli(t, d, "backend", "drain", "--id", "3")
	before := cli(t, d, "service", "get", "--json")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "add", "--vip", vip + ":80"}, "already exists: service " + vip + ":80/tcp is service 2"},
		{[]string{"service", "add", "--vip", "10.0.100.300:80"}, "want IP:PORT"},
		{[]string{"service", "add", "--vip", vip + ":81", "--proto", "icmp"}, "want tcp or udp"},
		{[]string{"backend", "add", "--service", "9", "--address", "10.0.2.50"}, "not found: service 9"},
		{[]string{"backend", "add", "--service", "2", "--address", "10.0.2.50:0"}, "port 0"},
		{[]string{"backend", "add", "--service", "2", "--address", lab.BackendAddrs[0].String()}, "already exists"},
		{[]string{"backend", "delete", "--id", "1"}, "backend 1 is not drained; drain it first"},
		{[]string{"backend", "drain", "--id", "77"}, "not found: backend 77"},
		{[]string{"backend", "drain", "--id", "x"}, "want a positive id"},
		{[]string{"service", "delete", "--id", "2"}, "not drained"},
	} {
		_, err := d.CLI(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	if after := cli(t, d, "service", "get", "--json"); after != before {
		t.Fatalf("rejected input changed the state:\n%s\nwant\n%s", after, before)
	}
	httpOK(t, lab, 10)
	cli(t, d, "fw", "add", "-n", "10.0.1.0/24", "-t", "udp", "-d", "9090")
	cli(t, d, "dos", "add", "-p", "tcp", "-t", "syn", "-l", "5000", "--block", "20s")
	rulesBefore := cli(t, d, "fw", "get")
	policiesBefore := cli(t, d, "dos", "get")

	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemonIn(t, lab, dir)
	// Nothing was dropped before the stop, so the tables (counters
	// included) must come back identical.
	if got := cli(t, d2, "fw", "get"); got != rulesBefore || !strings.Contains(got, "10.0.1.0/24  udp") {
		t.Fatalf("rules after restart:\n%s\nbefore:\n%s", got, rulesBefore)
	}
	if got := cli(t, d2, "dos", "get"); got != policiesBefore {
		t.Fatalf("policies after restart:\n%s\nbefore:\n%s", got, policiesBefore)
	}
	if _, err := lab.Client.UDPRequest(lab.VIP.String()+":9090", "x", 300*time.Millisecond); err == nil {
		t.Fatal("restored firewall rule not enforced")
	}
	if after := stripCounters(t, cli(t, d2, "service", "get", "--json")); after != stripCounters(t, before) {
		t.Fatalf("restart did not restore the state:\n%s\nwant\n%s", after, stripCounters(t, before))
	}
	httpOK(t, lab, 10)
	if out := cli(t, d2, "backend", "add", "--service", "1", "--address", lab.BackendAddrs[0].String()); !strings.HasPrefix(out, "backend 4 added") {
		t.Fatalf("ids after restart: %q", out)
	}
	stopAndCheckDetached(t, lab, d2)
}

// httpOK waits for the VIP to answer, then checks n more requests succeed.
func httpOK(t *testing.T, lab *testenv.Lab, n int) {
	t.Helper()
	client := lab.Client.HTTPClient(2 * time.Second)
	url := "http://" + lab.VIP.String() + "/who"
	get := func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := testenv.WaitFor(10*time.Second, get); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := get(); err != nil {
			t.Fatal(err)
		}
	}
}

// stripCounters keeps the configuration part of `service get --json`.
func stripCounters(t *testing.T, s string) string {
	t.Helper()
	var svcs []api.Service
	if err := json.Unmarshal([]byte(s), &svcs); err != nil {
		t.Fatal(err)
	}
	for i := range svcs {
		svcs[i].Packets, svcs[i].Bytes, svcs[i].ActiveConns = 0, 0, 0
		for j := range svcs[i].Backends {
			b := &svcs[i].Backends[j]
			b.Packets, b.Bytes, b.Flows, b.ActiveConns, b.MAC = 0, 0, 0, 0, ""
		}
	}
	out, _ := json.Marshal(svcs)
	return string(out)
}
