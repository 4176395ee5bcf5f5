package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// backendHealth asks the API directly: polling through the CLI binary
// would add a process start to every measurement.
func backendHealth(t *testing.T, d *testenv.Daemon, id uint32) string {
	t.Helper()
	bs, err := api.NewClient(d.Socket).Backends()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.ID == id {
			return b.Health
		}
	}
	t.Fatalf("backend %d not listed", id)
	return ""
}

// spread makes n HTTP connections and counts the answering backends; a
// failed connection is an error.
func spread(t *testing.T, lab *testenv.Lab, n int) map[string]int {
	t.Helper()
	client := lab.Client.HTTPClient(2 * time.Second)
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		resp, err := client.Get("http://" + lab.VIP.String() + "/who")
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen[string(body)]++
	}
	return seen
}

func TestHealthChecks(t *testing.T) {
	lab, servers := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2})
	d := startDaemonIn(t, lab, t.TempDir())
	const interval, fall, rise = 200 * time.Millisecond, 3, 2
	cli(t, d, "service", "add", "--vip", lab.VIP.String()+":80", "--health", "http", "--health-path", "/who",
		"--health-interval", interval.String(), "--health-timeout", "150ms",
		"--health-rise", fmt.Sprint(rise), "--health-fall", fmt.Sprint(fall))
	for _, a := range lab.BackendAddrs {
		cli(t, d, "backend", "add", "--service", "1", "--address", a.String())
	}
	httpOK(t, lab, 1)
	// Longer than fall x interval: probes that failed (for instance because
	// their replies were steered away from the kernel) would show by now.
	time.Sleep(fall*interval + 2*interval)
	for id := uint32(1); id <= 2; id++ {
		if h := backendHealth(t, d, id); h != "healthy" {
			t.Fatalf("backend %d is %s with its server up", id, h)
		}
	}

	servers[0].Stop()
	killed := time.Now()
	for backendHealth(t, d, 1) != "unhealthy" {
		if time.Since(killed) > 5*time.Second {
			t.Fatal("backend 1 never turned unhealthy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(killed)
	t.Logf("unhealthy %s after the server stopped (fall x interval = %s)", took, fall*interval)
	// The next probe runs at most one interval after the stop, and the
	// fall-th failure (fall-1) intervals later: fall x interval in all,
	// plus scheduling and the 5ms poll.
	if took > fall*interval+50*time.Millisecond {
		t.Errorf("took %s to mark unhealthy, want <= %s", took, fall*interval)
	}
	var bs []api.Backend
	json.Unmarshal([]byte(cli(t, d, "backend", "get", "--json")), &bs)
	if bs[0].HealthError == "" {
		t.Error("unhealthy backend shows no error")
	}
	if seen := spread(t, lab, 30); seen["backend2"] != 30 {
		t.Fatalf("with backend 1 down: %v", seen)
	}

	if err := servers[0].Start(); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitFor(5*time.Second, func() error {
		if h := backendHealth(t, d, 1); h != "healthy" {
			return fmt.Errorf("backend 1 %s", h)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen := spread(t, lab, 30); seen["backend1"] == 0 {
		t.Fatalf("recovered backend gets no new connections: %v", seen)
	}
	stopAndCheckDetached(t, lab, d)
}
