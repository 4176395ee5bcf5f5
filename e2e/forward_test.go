package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

func TestTwoArm(t *testing.T) { forwardScenario(t, testenv.TwoArm, syscall.SIGTERM) }

func TestOneArm(t *testing.T) { forwardScenario(t, testenv.OneArm, syscall.SIGINT) }

func TestGenericMode(t *testing.T) {
	lab, d := startLab(t, testenv.TwoArm, "--xdp-mode", "generic")
	checkHTTPSpread(t, lab, 20, 3)
	stopAndCheckDetached(t, lab, d)
}

func forwardScenario(t *testing.T, topo testenv.Topology, stop os.Signal) {
	lab, d := startLab(t, topo)
	// The kernel of the lb namespace cannot be what forwards: it does not
	// route, and the VIP is configured nowhere.
	if out, err := lab.LB.Exec("sysctl", "-n", "net.ipv4.ip_forward"); err != nil || strings.TrimSpace(out) != "0" {
		t.Fatalf("ip_forward in lb namespace: %q %v", out, err)
	}
	t.Run("http 100 connections over 2 backends", func(t *testing.T) {
		checkHTTPSpread(t, lab, 100, 30)
	})
	t.Run("udp request/response", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 40; i++ {
			payload := fmt.Sprintf("req-%d", i)
			got, err := lab.Client.UDPRequest(lab.VIP.String()+":9090", payload, 2*time.Second)
			if err != nil {
				t.Fatalf("udp request %d: %v", i, err)
			}
			name, echoed, ok := strings.Cut(got, ":")
			if !ok || echoed != payload {
				t.Fatalf("udp answer %q to %q", got, payload)
			}
			seen[name]++
		}
		if seen["backend1"] == 0 || seen["backend2"] == 0 {
			t.Fatalf("udp flows all went to one backend: %v", seen)
		}
	})
	t.Run("tcp port mapping 3307 to 3306", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			conn, err := lab.Client.DialContext(context.Background(), "tcp4", lab.VIP.String()+":3307")
			if err != nil {
				t.Fatalf("dial VIP:3307: %v", err)
			}
			conn.SetDeadline(time.Now().Add(3 * time.Second))
			r := bufio.NewReader(conn)
			name, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(name, "backend") {
				t.Fatalf("greeting %q: %v", name, err)
			}
			msg := strings.Repeat("x", 3000) + "\n" // several segments each way
			if _, err := io.WriteString(conn, msg); err != nil {
				t.Fatal(err)
			}
			echo, err := r.ReadString('\n')
			if err != nil || echo != msg {
				t.Fatalf("echo of %d bytes: got %d bytes, %v", len(msg), len(echo), err)
			}
			conn.Close()
		}
	})
	t.Run("bulk transfer through the express path", func(t *testing.T) {
		expressTransfer(t, lab, d, lab.VIP.String())
	})
	stopWithAndCheckDetached(t, lab, d, stop)
	// 100 HTTP + 40 UDP + 10 mapped TCP flows, plus readiness probes.
	if n := statValue(t, d.Output(), "new_flows"); n < 150 {
		t.Fatalf("daemon tracked %d new flows, want >= 150", n)
	}
}

// statValue reads a counter from the daemon's exit "stats" log line.
func statValue(t *testing.T, log, name string) int {
	t.Helper()
	m := regexp.MustCompile(`"` + name + `": (\d+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no %s in daemon log", name)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// checkHTTPSpread makes n HTTP GETs, each on a new connection, and wants
// every backend to answer at least min of them.
func checkHTTPSpread(t *testing.T, lab *testenv.Lab, n, min int) {
	t.Helper()
	checkHTTPSpreadTo(t, lab, lab.VIP.String(), n, min)
}

// checkHTTPSpreadTo is checkHTTPSpread to host ("[2001:db8:100::1]:8080").
func checkHTTPSpreadTo(t *testing.T, lab *testenv.Lab, host string, n, min int) {
	t.Helper()
	client := lab.Client.HTTPClient(3 * time.Second)
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		resp, err := client.Get("http://" + host + "/who")
		if err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %d: status %d, %v", i, resp.StatusCode, err)
		}
		counts[string(body)]++
	}
	t.Logf("distribution of %d connections: %v", n, counts)
	for _, b := range []string{"backend1", "backend2"} {
		if counts[b] < min {
			t.Fatalf("%s got %d of %d connections, want >= %d (%v)", b, counts[b], n, min, counts)
		}
	}
}

// expressTransfer moves 8 MiB each way through host: most packets of a
// long flow are replayed by the express path, and the transfer's sha256
// both ways says it rewrote them right.
func expressTransfer(t *testing.T, lab *testenv.Lab, d *testenv.Daemon, host string) {
	t.Helper()
	before := statsJSON(t, d).Dataplane
	transferBothWays(t, lab.Client, host, 8<<20)
	after := statsJSON(t, d).Dataplane
	sent := after.Forwarded + after.Replied - before.Forwarded - before.Replied
	if x := after.Express - before.Express; x < sent/2 || x > sent {
		t.Fatalf("the express path took %d of %d packets sent on", x, sent)
	}
}
