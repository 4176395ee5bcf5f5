package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// Hardening of the control plane (issue 9): each test names the bug it
// pins down.

func servicesJSON(t *testing.T, d *testenv.Daemon) []api.Service {
	t.Helper()
	return cliJSON[[]api.Service](t, d, "service", "get")
}

// Bug 1: "TCP" and "tcp" are one protocol, parsed once; a duplicate is
// refused before anything is saved, and the daemon restarts on its file.
func TestProtocolParsedOnce(t *testing.T) {
	dir := t.TempDir()
	lab, d := startControlLab(t, 2, dir)
	vip := lab.VIP.String()
	cli(t, d, "service", "add", "--vip", vip+":80", "--proto", "tcp")
	_, err := d.CLI("service", "add", "--vip", vip+":80", "--proto", "TCP")
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("upper-case duplicate: %v, want 'already exists'", err)
	}
	cli(t, d, "service", "add", "--vip", vip+":9090", "--proto", "UDP")
	if _, err := d.CLI("service", "add", "--vip", vip+":81", "--proto", "sctp"); err == nil || !strings.Contains(err.Error(), "want tcp or udp") {
		t.Fatalf("sctp: %v", err)
	}
	// Later changes still apply: the dataplane never saw a bad table.
	cli(t, d, "backend", "add", "--service", "1", "--address", lab.BackendAddrs[0].String())
	ss := servicesJSON(t, d)
	if len(ss) != 2 || ss[0].Proto != "tcp" || ss[1].Proto != "udp" || len(ss[0].Backends) != 1 {
		t.Fatalf("services after the changes: %+v", ss)
	}
	stopAndCheckDetached(t, lab, d)
	d = startDaemonIn(t, lab, dir)
	if again := servicesJSON(t, d); len(again) != 2 || again[1].Proto != "udp" {
		t.Fatalf("after restart: %+v", again)
	}
}

// Bug 5: flags seed a new state file only; once it exists it wins, and a
// backend deleted through the API does not come back at restart.
func TestFlagsSeedOnlyANewStateFile(t *testing.T) {
	dir := t.TempDir()
	lab, _ := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2})
	flags := []string{"--vip", lab.VIP.String() + ":80/tcp", "--backend", lab.BackendAddrs[0].String(),
		"--backend", lab.BackendAddrs[1].String()}
	d := startDaemonIn(t, lab, dir, flags...)
	if bs := backendsJSON(t, d); len(bs) != 2 {
		t.Fatalf("flags did not seed the state: %+v", bs)
	}
	cli(t, d, "backend", "drain", "--id", "1")
	cli(t, d, "backend", "delete", "--id", "1")
	stopAndCheckDetached(t, lab, d)
	d = startDaemonIn(t, lab, dir, flags...)
	bs := backendsJSON(t, d)
	if len(bs) != 1 || bs[0].ID != 2 {
		t.Fatalf("after restart with the same flags: %+v, want only backend 2", bs)
	}
	if !strings.Contains(d.Output(), "the state file wins") {
		t.Fatalf("ignored flags not reported:\n%s", d.Output())
	}
}

// Bug 6 and 16: a second daemon on the same state file, or on the same
// interfaces, refuses to start and names the one that runs.
func TestSecondDaemonRefused(t *testing.T) {
	dir := t.TempDir()
	lab, d := startControlLab(t, 1, dir)
	cli(t, d, "service", "add", "--vip", lab.VIP.String()+":80")
	before, _ := os.ReadFile(d.State)

	other, _, err := testenv.NewVethPair(t, testenv.Endpoint{If: "x0", CIDR: "10.77.0.1/24"}, testenv.Endpoint{If: "x1", CIDR: "10.77.0.2/24"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := testenv.StartDaemonAt(t, other, daemonBin, filepath.Join(t.TempDir(), "api.sock"), d.State, "--upstream", "x0")
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(10 * time.Second); err == nil || strings.Contains(err.Error(), "still running") {
		t.Fatalf("second daemon on the same state file: %v\n%s", err, second.Output())
	}
	if want := fmt.Sprintf("pid %d", d.Pid()); !strings.Contains(second.Output(), want) || !strings.Contains(second.Output(), "in use") {
		t.Fatalf("second daemon did not name the holder (%s):\n%s", want, second.Output())
	}
	if now, _ := os.ReadFile(d.State); string(now) != string(before) {
		t.Fatal("second daemon changed the state file")
	}

	tmp := t.TempDir()
	third, err := testenv.StartDaemonAt(t, lab.LB, daemonBin, filepath.Join(tmp, "api.sock"), filepath.Join(tmp, "state.json"),
		"--upstream", lab.UpstreamIf, "--backend-if", lab.BackendIf)
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Wait(10 * time.Second); err == nil || strings.Contains(err.Error(), "still running") {
		t.Fatalf("second daemon on the same interfaces: %v", err)
	}
	out := third.Output()
	if !strings.Contains(out, fmt.Sprintf("pid %d", d.Pid())) || strings.Contains(out, "replacing a stale") {
		t.Fatalf("second daemon on the same interfaces must name the running one and not call it stale:\n%s", out)
	}
	// The first daemon is untouched.
	if got := servicesJSON(t, d); len(got) != 1 {
		t.Fatalf("first daemon lost its state: %+v", got)
	}
}

// Bug 9: SIGHUP does not kill the daemon; every exit path cleans up.
func TestSighupKeepsRunning(t *testing.T) {
	dir := t.TempDir()
	lab, d := startControlLab(t, 1, dir)
	cli(t, d, "service", "add", "--vip", lab.VIP.String()+":80")
	cli(t, d, "backend", "add", "--service", "1", "--address", lab.BackendAddrs[0].String())
	if err := testenv.WaitFor(5*time.Second, func() error {
		if bs := backendsJSON(t, d); bs[0].MAC == "" {
			return fmt.Errorf("backend MAC unresolved")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if done, err := d.Exited(); done {
		t.Fatalf("SIGHUP ended the daemon: %v", err)
	}
	cli(t, d, "service", "get")
	if !strings.Contains(d.Output(), "SIGHUP") {
		t.Errorf("SIGHUP not logged:\n%s", d.Output())
	}
	stopAndCheckDetached(t, lab, d)
	if _, err := os.Stat(d.Socket); !os.IsNotExist(err) {
		t.Errorf("API socket left behind: %v", err)
	}
	if out, _ := lab.LB.IP("neigh", "show", "dev", lab.BackendIf); strings.Contains(out, "managed") {
		t.Errorf("managed neighbour entries left behind:\n%s", out)
	}
}

// Bug 10: bad addresses, a VIP that is the host's own address, and bad
// daemon flags are refused with an error naming the problem; nothing is
// changed or removed that the operator did not ask for.
func TestBadInputRefused(t *testing.T) {
	dir := t.TempDir()
	lab, d := startControlLab(t, 1, dir)
	cli(t, d, "service", "add", "--vip", lab.VIP.String()+":80")
	state, _ := os.ReadFile(d.State)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "add", "--vip", "0.0.0.0:80"}, "unspecified"},
		{[]string{"service", "add", "--vip", "224.0.0.1:80"}, "multicast"},
		{[]string{"service", "add", "--vip", "127.0.0.1:80"}, "loopback"},
		{[]string{"service", "add", "--vip", "255.255.255.255:80"}, "broadcast"},
		{[]string{"service", "add", "--vip", "10.0.1.1:80"}, "address of this host"},
		{[]string{"backend", "add", "--service", "1", "--address", "255.255.255.255"}, "broadcast"},
		{[]string{"backend", "add", "--service", "1", "--address", "224.0.0.1"}, "multicast"},
		{[]string{"backend", "add", "--service", "1", "--address", "127.0.0.1"}, "loopback"},
		{[]string{"backend", "add", "--service", "1", "--address", "0.0.0.0"}, "unspecified"},
	} {
		_, err := d.CLI(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %q", c.args, err, c.want)
		}
	}
	// Trailing garbage after a JSON body.
	hc := &http.Client{Transport: &http.Transport{Dial: func(_, _ string) (net.Conn, error) { return net.Dial("unix", d.Socket) }}}
	resp, err := hc.Post("http://lb/v1/services", "application/json",
		strings.NewReader(`{"vip":"10.0.100.1:81","proto":"tcp"} {"vip":"10.0.100.1:82"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("body with trailing data: status %d, want 400", resp.StatusCode)
	}
	if now, _ := os.ReadFile(d.State); string(now) != string(state) {
		t.Errorf("refused input changed the state file:\n%s", now)
	}

	// Daemon flags, checked before anything is touched.
	regular := filepath.Join(t.TempDir(), "not-a-socket")
	os.WriteFile(regular, []byte("keep me"), 0o600)
	for _, c := range []struct {
		socket string
		args   []string
		want   string
	}{
		{"", []string{"--conntrack-size", "-5"}, "--conntrack-size"},
		{"", []string{"--conntrack-size", "0"}, "--conntrack-size"},
		{"", []string{"--queues", "-1"}, "--queues"},
		{"", []string{"--cpus", "999"}, "--cpus"},
		{regular, nil, "not a socket"},
	} {
		tmp := t.TempDir()
		sock := c.socket
		if sock == "" {
			sock = filepath.Join(tmp, "api.sock")
		}
		x, err := testenv.StartDaemonAt(t, lab.LB, daemonBin, sock, filepath.Join(tmp, "state.json"),
			append([]string{"--upstream", "lo"}, c.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Wait(10 * time.Second); err == nil || !strings.Contains(x.Output(), c.want) {
			t.Errorf("run %v (socket %s): %v, want an error naming %q:\n%s", c.args, sock, err, c.want, x.Output())
		}
	}
	if b, err := os.ReadFile(regular); err != nil || string(b) != "keep me" {
		t.Errorf("a regular file at --socket was removed or changed: %v", err)
	}
}
