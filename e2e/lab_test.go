package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// startLab builds the topology, starts backend servers and the daemon with
// three services (HTTP 80, UDP 9090, TCP 3307 -> 3306), and waits until the
// VIP answers.
func startLab(t *testing.T, topo testenv.Topology, extra ...string) (*testenv.Lab, *testenv.Daemon) {
	t.Helper()
	lab, _ := labWithServers(t, testenv.LabConfig{Topology: topo, Backends: 2})
	vip := lab.VIP.String()
	b1, b2 := lab.BackendAddrs[0].String(), lab.BackendAddrs[1].String()
	args := append([]string{"--upstream", lab.UpstreamIf, "--backend-if", lab.BackendIf,
		"--vip", vip + ":80/tcp", "--vip", vip + ":9090/udp", "--backend", b1, "--backend", b2,
		"--service", fmt.Sprintf("tcp/%s:3307=%s:3306,%s:3306", vip, b1, b2)}, extra...)
	d, err := testenv.StartDaemon(t, lab.LB, daemonBin, t.TempDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon output:\n%s", d.Output())
		}
	})
	err = testenv.WaitFor(15*time.Second, func() error {
		if done, err := d.Exited(); done {
			return fmt.Errorf("daemon exited early: %v", err)
		}
		_, err := lab.Client.UDPRequest(vip+":9090", "ready?", 300*time.Millisecond)
		return err
	})
	if err != nil {
		t.Fatalf("load balancer never answered: %v", err)
	}
	return lab, d
}

// labWithServers builds a lab whose backends run the lab servers
// ("backend1", "backend2", ...).
func labWithServers(t *testing.T, cfg testenv.LabConfig) (*testenv.Lab, []*testenv.BackendServer) {
	t.Helper()
	testenv.RequireRoot(t)
	lab, err := testenv.NewLab(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lab, serveBackends(t, lab)
}

// serveBackends runs the lab servers ("backend1", ...) on the lab's backends.
func serveBackends(t *testing.T, lab *testenv.Lab) []*testenv.BackendServer {
	t.Helper()
	var servers []*testenv.BackendServer
	for i, b := range lab.Backends {
		s, err := testenv.ServeBackend(t, b, fmt.Sprintf("backend%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
	}
	return servers
}

// stopAndCheckDetached stops the daemon with SIGTERM and checks that no XDP
// program is left on the load balancer's interfaces.
func stopAndCheckDetached(t *testing.T, lab *testenv.Lab, d *testenv.Daemon) {
	t.Helper()
	stopWithAndCheckDetached(t, lab, d, syscall.SIGTERM)
}

func stopWithAndCheckDetached(t *testing.T, lab *testenv.Lab, d *testenv.Daemon, sig os.Signal) {
	t.Helper()
	if err := d.Stop(sig, 10*time.Second); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	if !strings.Contains(d.Output(), "xdp detached") {
		t.Errorf("daemon did not report detaching:\n%s", d.Output())
	}
	for _, name := range []string{lab.UpstreamIf, lab.BackendIf} {
		if id := xdpProgID(t, lab, name); id != 0 {
			t.Errorf("XDP program %d still attached to %s after exit", id, name)
		}
	}
}
