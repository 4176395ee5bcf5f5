package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// Hardening of the packet path (issue 9).

func statsJSON(t *testing.T, d *testenv.Daemon) api.Stats {
	t.Helper()
	return cliJSON[api.Stats](t, d, "stat")
}

// httpGets makes n GETs of /who through the VIP, each on a new connection,
// and counts the answers per backend; failures are returned as an error.
func httpGets(lab *testenv.Lab, client *testenv.NS, n int) (map[string]int, error) {
	hc := client.HTTPClient(2 * time.Second)
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		resp, err := hc.Get("http://" + lab.VIP.String() + "/who")
		if err != nil {
			return seen, fmt.Errorf("GET %d of %d: %w", i+1, n, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen[string(b)]++
	}
	return seen, nil
}

// Bug 3: RX queues the daemon would not serve are refused at start with a
// fix to apply; with matching queues, every queue is served.
func TestUnservedQueuesRefused(t *testing.T) {
	lab, _ := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2, UpQueues: 4, DownQueues: 1})
	d, err := testenv.StartDaemon(t, lab.LB, daemonBin, t.TempDir(), "--upstream", lab.UpstreamIf, "--backend-if", lab.BackendIf,
		"--vip", lab.VIP.String()+":80/tcp", "--backend", lab.BackendAddrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(10 * time.Second); err == nil || strings.Contains(err.Error(), "still running") {
		t.Fatalf("daemon started with 3 unserved upstream queues: %v", err)
	}
	for _, want := range []string{"up0", "queues 1-3", "ethtool -L"} {
		if !strings.Contains(d.Output(), want) {
			t.Errorf("refusal does not say %q:\n%s", want, d.Output())
		}
	}
	for _, name := range []string{lab.UpstreamIf, lab.BackendIf} {
		if id := xdpProgID(t, lab, name); id != 0 {
			t.Errorf("refused start left XDP program %d on %s", id, name)
		}
	}
}

func TestEveryQueueServed(t *testing.T) {
	lab, _ := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2, UpQueues: 2, DownQueues: 2})
	args := []string{"--vip", lab.VIP.String() + ":80/tcp", "--backend", lab.BackendAddrs[0].String(), "--backend", lab.BackendAddrs[1].String()}
	// --queues 1 would leave queue 1 of both NICs unserved.
	x, err := testenv.StartDaemon(t, lab.LB, daemonBin, t.TempDir(), append([]string{"--upstream", lab.UpstreamIf,
		"--backend-if", lab.BackendIf, "--queues", "1"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Wait(10 * time.Second); err == nil || !strings.Contains(x.Output(), "--queues") {
		t.Fatalf("--queues 1 on 2-queue NICs: %v\n%s", err, x.Output())
	}
	d := startDaemonIn(t, lab, t.TempDir(), args...)
	if err := testenv.WaitFor(10*time.Second, func() error { _, err := httpGets(lab, lab.Client, 1); return err }); err != nil {
		t.Fatal(err)
	}
	seen, err := httpGets(lab, lab.Client, 40)
	if err != nil {
		t.Fatalf("%v (so far %v)", err, seen)
	}
	rx := map[string]uint64{}
	for _, s := range statsJSON(t, d).Sockets {
		rx[fmt.Sprintf("%s/%d", s.Interface, s.Queue)] = s.RxPackets
	}
	for _, k := range []string{"up0/0", "up0/1", "down0/0", "down0/1"} {
		if rx[k] == 0 {
			t.Errorf("queue %s received nothing: %v", k, rx)
		}
	}
	stopAndCheckDetached(t, lab, d)
}

// Bug 4: a deleted neighbour entry is requested again; until then the
// backend gets no new flows, so no connection is blackholed for long.
func TestDeletedNeighbourRecovers(t *testing.T) {
	lab, d := startLab(t, testenv.TwoArm)
	if _, err := httpGets(lab, lab.Client, 10); err != nil {
		t.Fatal(err)
	}
	b1 := lab.BackendAddrs[0].String()
	// Backend1 never asks for the LB's MAC (an ARP request would teach the
	// LB's kernel backend1's MAC again); only the daemon can bring it back.
	lbMAC, err := lab.LB.MAC(lab.BackendIf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Backends[0].IP("neigh", "replace", "10.0.2.1", "lladdr", lbMAC.String(), "dev", "eth0", "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.LB.IP("neigh", "del", b1, "dev", lab.BackendIf); err != nil {
		t.Fatal(err)
	}
	// Past a full next-hop refresh, so the daemon has seen the entry gone.
	time.Sleep(2500 * time.Millisecond)
	start := time.Now()
	err = testenv.WaitFor(5*time.Second, func() error {
		seen, err := httpGets(lab, lab.Client, 20)
		if err != nil {
			return err
		}
		if seen["backend1"] == 0 {
			return fmt.Errorf("backend1 gets no flows yet: %v", seen)
		}
		return nil
	})
	if err != nil {
		out, _ := lab.LB.IP("neigh", "show", "dev", lab.BackendIf)
		t.Fatalf("traffic did not recover after the neighbour was deleted: %v\n%s", err, out)
	}
	t.Logf("recovered %s after the neighbour entry was deleted", time.Since(start).Round(100*time.Millisecond))
	stopAndCheckDetached(t, lab, d)
}

// Bug 7: a packet that looks like a backend's reply but comes from the
// client side (two-arm) or from another MAC than the backend's (one-arm)
// is dropped and counted, never reverse-NATed into a client's flow.
func TestSpoofedReplyDropped(t *testing.T) {
	for _, topo := range []testenv.Topology{testenv.TwoArm, testenv.OneArm} {
		t.Run(map[testenv.Topology]string{testenv.TwoArm: "two-arm", testenv.OneArm: "one-arm"}[topo], func(t *testing.T) {
			lab, _ := labWithServers(t, testenv.LabConfig{Topology: topo, Backends: 2, Clients: 2})
			d := startDaemonIn(t, lab, t.TempDir(), "--vip", lab.VIP.String()+":9090/udp",
				"--backend", lab.BackendAddrs[0].String(), "--backend", lab.BackendAddrs[1].String())
			var conn net.Conn
			err := testenv.WaitFor(10*time.Second, func() error {
				c, err := lab.Client.DialContext(context.Background(), "udp4", lab.VIP.String()+":9090")
				if err != nil {
					return err
				}
				c.SetDeadline(time.Now().Add(300 * time.Millisecond))
				c.Write([]byte("hello"))
				buf := make([]byte, 100)
				if _, err := c.Read(buf); err != nil {
					c.Close()
					return err
				}
				conn = c
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			local := conn.LocalAddr().(*net.UDPAddr)
			lbMAC, err := lab.LB.MAC(lab.UpstreamIf)
			if err != nil {
				t.Fatal(err)
			}
			spooferMAC, err := lab.Clients[1].MAC("eth0")
			if err != nil {
				t.Fatal(err)
			}
			var frames [][]byte
			for _, b := range lab.BackendAddrs {
				f := fixture.Frame{SrcMAC: [6]byte(spooferMAC), DstMAC: [6]byte(lbMAC), Src: b, Dst: lab.ClientAddr,
					Proto: fixture.ProtoUDP, SrcPort: 9090, DstPort: uint16(local.Port), Payload: []byte("spoofed")}
				frames = append(frames, f.Bytes(), f.Bytes())
			}
			if err := lab.Clients[1].SendFrames("eth0", frames); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 100)
			if n, err := conn.Read(buf); err == nil {
				t.Fatalf("client received a spoofed reply: %q", buf[:n])
			}
			if got := statsJSON(t, d).Drops["spoofed_reply"]; got != uint64(len(frames)) {
				t.Fatalf("spoofed_reply = %d, want %d", got, len(frames))
			}
			// The real flow still works.
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			conn.Write([]byte("again"))
			if n, err := conn.Read(buf); err != nil || !strings.HasSuffix(string(buf[:n]), ":again") {
				t.Fatalf("real reply after the spoofing: %q %v", buf[:n], err)
			}
		})
	}
}

// Bug 8: firewall rules and DoS policies apply to client traffic; backend
// replies and the daemon's own health probes are never denied or limited.
func TestFiltersSpareBackendTraffic(t *testing.T) {
	lab, _ := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2})
	d := startDaemonIn(t, lab, t.TempDir())
	vip := lab.VIP.String()
	cli(t, d, "service", "add", "--vip", vip+":80", "--health", "tcp", "--health-interval", "200ms", "--health-timeout", "100ms",
		"--health-fall", "2")
	cli(t, d, "service", "add", "--vip", vip+":9090", "--proto", "udp")
	for _, b := range lab.BackendAddrs {
		cli(t, d, "backend", "add", "--service", "1", "--address", b.String())
		cli(t, d, "backend", "add", "--service", "2", "--address", b.String())
	}
	if err := testenv.WaitFor(10*time.Second, func() error { _, err := httpGets(lab, lab.Client, 1); return err }); err != nil {
		t.Fatal(err)
	}
	// Every TCP packet from the backend network is denied, and every
	// source may send 100 UDP packets a second.
	cli(t, d, "fw", "add", "--network", "10.0.2.0/24", "--protocol", "tcp")
	cli(t, d, "dos", "add", "--protocol", "udp", "--type", "any", "--limit", "100", "--block", "30s")
	time.Sleep(time.Second) // > fall x interval of the probes
	for _, b := range backendsJSON(t, d) {
		if b.Health == "unhealthy" {
			t.Fatalf("backend %s unhealthy under a firewall rule for its network: %s", b.Address, b.HealthError)
		}
	}
	if seen, err := httpGets(lab, lab.Client, 20); err != nil || len(seen) != 2 {
		t.Fatalf("HTTP through the VIP under the rule: %v %v", seen, err)
	}
	// One request, 300 replies: the backend must not be limited.
	got, err := blast(lab.Client, vip+":9090", 300)
	if err != nil {
		t.Fatal(err)
	}
	if got < 250 {
		t.Errorf("client received %d of 300 backend replies", got)
	}
	ps := cliJSON[[]api.DosPolicy](t, d, "dos", "get")
	if len(ps) != 1 || ps[0].DroppedPackets != 0 || len(ps[0].Blocked) != 0 {
		t.Fatalf("policy hit backend replies: %+v", ps)
	}
	rules := cliJSON[[]api.FirewallRule](t, d, "fw", "get")
	if len(rules) != 1 || rules[0].DroppedPackets != 0 {
		t.Fatalf("rule hit backend replies or probe replies: %+v", rules)
	}
}

// blast sends "blast n" and counts the datagrams that come back within a second.
func blast(ns *testenv.NS, addr string, n int) (int, error) {
	c, err := ns.DialContext(context.Background(), "udp4", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "blast %d", n); err != nil {
		return 0, err
	}
	got := 0
	buf := make([]byte, 100)
	for {
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(buf); err != nil {
			return got, nil
		}
		got++
	}
}

// Bug 15: a rate-limited download survives a daemon restart: the backend's
// retransmissions rebuild the flow from the Maglev pick.
func TestRestartKeepsDownload(t *testing.T) {
	dir := t.TempDir()
	lab, _ := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2})
	args := []string{"--vip", lab.VIP.String() + ":80/tcp", "--backend", lab.BackendAddrs[0].String(),
		"--backend", lab.BackendAddrs[1].String()}
	d := startDaemonIn(t, lab, dir, args...)
	const size = 10 << 20
	want := sha256.Sum256(testenv.Payload(size))
	type result struct {
		sum [32]byte
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		// No keepalive: the client, having acked everything, sends nothing
		// that could rebuild the flow; the backend must.
		hc := &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{DialContext: lab.Client.DialNoKeepAlive}}
		resp, err := hc.Get(fmt.Sprintf("http://%s/bytes?n=%d&rate=%d", lab.VIP, size, 2<<20))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n, r.err = int(n), err
		done <- r
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Without the flows saved at exit (as after a crash): the restarted
	// daemon must rebuild the flow from the backend's packets.
	if err := os.Remove(filepath.Join(dir, "state.json.conntrack")); err != nil {
		t.Fatal(err)
	}
	d = startDaemonIn(t, lab, dir, args...)
	r := <-done
	if r.err != nil || r.n != size || r.sum != want {
		t.Fatalf("download across the restart: %d of %d bytes, sha256 ok %v, err %v", r.n, size, r.sum == want, r.err)
	}
	if st := statsJSON(t, d); st.Dataplane.RebuiltFlows == 0 {
		t.Fatalf("the restarted daemon never rebuilt the flow from the backend's packets: %+v", st.Dataplane)
	}
	stopAndCheckDetached(t, lab, d)
}
