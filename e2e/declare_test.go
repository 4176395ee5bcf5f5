package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// lbYAML is a document: VIP:3307 -> backends:3306, one firewall rule.
func lbYAML(lab *testenv.Lab, backends ...int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "services:\n  - vip: %s:3307\n    backends:\n", lab.VIP)
	for _, i := range backends {
		fmt.Fprintf(&b, "      - address: %s:3306\n", lab.BackendAddrs[i])
	}
	b.WriteString("firewall:\n  - network: 192.0.2.0/24\n    proto: udp\n")
	return b.String()
}

// Declarative configuration against a running daemon (issue 14, part 1):
// run --config, plan (nothing changes; flows pinned to a backend to be
// removed are counted), apply in one step, export round trip, SIGHUP
// re-applies the file, a bad file changes nothing, a restart starts from
// the file.
func TestDeclarativeConfig(t *testing.T) {
	lab, _ := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 3})
	dir := t.TempDir()
	file := filepath.Join(dir, "lb.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(lbYAML(lab, 0, 1))
	d := startDaemonIn(t, lab, dir, "--config", file)
	vip := lab.VIP.String() + ":3307"
	waitNewFlows(t, d, 1)
	var conns []*echoConn
	for i := 0; i < 20; i++ {
		c, err := dialEcho(t, lab, vip)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	onB1 := 0
	for _, c := range conns {
		if c.backend == "backend1" {
			onB1++
		}
	}
	if onB1 == 0 || onB1 == 20 {
		t.Fatalf("%d of 20 connections on backend1", onB1)
	}
	exported := cli(t, d, "export")

	// Plan: replace backend 1 by backend 3. Nothing changes.
	plan := filepath.Join(dir, "plan.yaml")
	os.WriteFile(plan, []byte(lbYAML(lab, 2, 1)), 0o644)
	res := cliJSON[api.ApplyResult](t, d, "plan", "-f", plan)
	if res.Applied || len(res.Changes) != 2 || len(res.Services) != 1 {
		t.Fatalf("plan %+v", res)
	}
	sp := res.Services[0]
	if sp.PinnedFlows != onB1 || sp.MovedShare < 0.4 || sp.MovedShare > 0.8 {
		t.Fatalf("plan: %+v, want %d pinned flows", sp, onB1)
	}
	if cli(t, d, "export") != exported {
		t.Fatal("plan changed the state")
	}
	text := cli(t, d, "plan", "-f", plan)
	if !strings.Contains(text, "- backend "+lab.BackendAddrs[0].String()+":3306") || !strings.Contains(text, "not applied") {
		t.Fatalf("plan printed %q", text)
	}

	// Apply: one step; the flows on backend 2 keep going.
	out := cli(t, d, "apply", "-f", plan)
	if !strings.HasSuffix(out, "\napplied\n") {
		t.Fatalf("apply printed %q", out)
	}
	for i, c := range conns {
		if c.backend == "backend2" {
			if err := c.roundTrip(fmt.Sprintf("after apply %d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitNewFlows(t, d, 1)
	if seen := newConnections(t, lab, vip, 20); seen["backend1"] != 0 || seen["backend3"] == 0 {
		t.Fatalf("after apply: %v", seen)
	}

	// Export round trip: the export applied again is no change, and its
	// text is what a fresh export gives.
	exported = cli(t, d, "export")
	rt := filepath.Join(dir, "export.yaml")
	os.WriteFile(rt, []byte(exported), 0o644)
	if out := cli(t, d, "apply", "-f", rt); !strings.HasPrefix(out, "no changes\n") {
		t.Fatalf("re-applying the export printed %q", out)
	}
	if again := cli(t, d, "export"); again != exported {
		t.Fatalf("export changed:\n%s\n%s", exported, again)
	}

	// SIGHUP re-applies the --config file.
	write(lbYAML(lab, 0, 1, 2))
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitFor(5*time.Second, func() error {
		if n := len(backendsJSON(t, d)); n != 3 {
			return fmt.Errorf("%d backends", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A bad file on SIGHUP: logged, nothing changes, the daemon runs on.
	before := cli(t, d, "export")
	write("services:\n  - vip: 10.0.100.1:3307\n    backends: [{address: 10.0.2.11:3306, weight: 0x}]\n")
	d.Signal(syscall.SIGHUP)
	if err := testenv.WaitFor(5*time.Second, func() error {
		if !strings.Contains(d.Output(), "reload: the state is unchanged") {
			return fmt.Errorf("no reload error logged")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if cli(t, d, "export") != before {
		t.Fatal("a bad file changed the state")
	}
	if done, _ := d.Exited(); done {
		t.Fatal("the daemon exited on a bad file")
	}
	stopAndCheckDetached(t, lab, d)

	// A restart with --config starts from the file (the state file said
	// three backends; the file says two).
	write(lbYAML(lab, 1))
	d = startDaemonIn(t, lab, dir, "--config", file)
	if bs := backendsJSON(t, d); len(bs) != 1 || bs[0].Address != lab.BackendAddrs[1].String()+":3306" {
		t.Fatalf("after restart: %+v", bs)
	}
	stopAndCheckDetached(t, lab, d)
}
