package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// Forwarding modes (issue 10).

var snatAddr = netip.MustParseAddr("10.0.2.100")

// prepareMode sets the backends up as mode wants them: DSR backends hold the
// VIP and answer through the lab router (dsr-ipip ones run `scmlb-xsk
// decap`); full-NAT backends lose their route to the clients.
func prepareMode(t *testing.T, lab *testenv.Lab, servers []*testenv.BackendServer, mode fwdmode.Mode) []string {
	t.Helper()
	switch {
	case mode.DSR():
		bin := ""
		if mode == fwdmode.DSRIPIP {
			bin = daemonBin
		}
		if err := lab.PrepareDSR(t, bin); err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			if err := s.ServeUDPOn(t, lab.VIP); err != nil {
				t.Fatal(err)
			}
		}
	case mode == fwdmode.FullNAT:
		if err := lab.PrepareFullNAT(snatAddr); err != nil {
			t.Fatal(err)
		}
		return []string{"--snat-addr", snatAddr.String()}
	}
	return nil
}

// startModeLab is the two-arm lab with a router, the backends set up for
// mode, a daemon, and HTTP :80 and UDP :9090 services in that mode.
func startModeLab(t *testing.T, mode fwdmode.Mode, extra ...string) (*testenv.Lab, *testenv.Daemon) {
	t.Helper()
	lab, servers := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2, Router: true})
	args := append(prepareMode(t, lab, servers, mode), extra...)
	d := startDaemonIn(t, lab, t.TempDir(), args...)
	vip := lab.VIP.String()
	cli(t, d, "service", "add", "--vip", vip+":80", "--mode", mode.String())
	cli(t, d, "service", "add", "--vip", vip+":9090", "--proto", "udp", "--mode", mode.String())
	for _, b := range lab.BackendAddrs {
		cli(t, d, "backend", "add", "--service", "1", "--address", b.String())
		cli(t, d, "backend", "add", "--service", "2", "--address", b.String())
	}
	if err := testenv.WaitFor(10*time.Second, func() error {
		if _, err := lab.Client.UDPRequest(vip+":9090", "ready?", 300*time.Millisecond); err != nil {
			return err
		}
		_, err := httpGets(lab, lab.Client, 1)
		return err
	}); err != nil {
		t.Fatalf("%s: the VIP never answered: %v", mode, err)
	}
	return lab, d
}

func TestModes(t *testing.T) {
	for _, mode := range []fwdmode.Mode{fwdmode.FullNAT, fwdmode.DSRL2, fwdmode.DSRIPIP} {
		t.Run(mode.String(), func(t *testing.T) {
			lab, d := startModeLab(t, mode)
			before := statsJSON(t, d).Dataplane
			seen, err := httpGets(lab, lab.Client, 100)
			if err != nil {
				t.Fatal(err)
			}
			if seen["backend1"] < 30 || seen["backend2"] < 30 {
				t.Fatalf("100 connections spread %v", seen)
			}
			udp := map[string]int{}
			for i := 0; i < 20; i++ {
				conn, err := lab.Client.DialContext(context.Background(), "udp4", lab.VIP.String()+":9090")
				if err != nil {
					t.Fatal(err)
				}
				conn.SetDeadline(time.Now().Add(2 * time.Second))
				fmt.Fprintf(conn, "hello %d", i)
				buf := make([]byte, 100)
				n, err := conn.Read(buf)
				conn.Close()
				if err != nil || !strings.HasSuffix(string(buf[:n]), fmt.Sprintf(":hello %d", i)) {
					t.Fatalf("UDP flow %d: %q %v", i, buf[:n], err)
				}
				udp[strings.Split(string(buf[:n]), ":")[0]]++
			}
			if len(udp) != 2 {
				t.Errorf("20 UDP flows reached %v", udp)
			}
			after := statsJSON(t, d).Dataplane
			if after.Forwarded-before.Forwarded < 500 {
				t.Fatalf("the load balancer forwarded %d packets", after.Forwarded-before.Forwarded)
			}
			routes, _ := lab.Backends[0].IP("route", "show", "default")
			switch mode {
			case fwdmode.FullNAT:
				if strings.TrimSpace(routes) != "" {
					t.Fatalf("full-NAT backend has a default route: %s", routes)
				}
				flows := cliJSON[[]struct{ SNAT string }](t, d, "conntrack", "get")
				if len(flows) == 0 || !strings.HasPrefix(flows[0].SNAT, snatAddr.String()+":") {
					t.Fatalf("conntrack does not show the SNAT tuple: %+v", flows)
				}
			default: // DSR: no reply byte passes the load balancer
				if after.Replied != 0 {
					t.Fatalf("%d replies passed the load balancer", after.Replied)
				}
				if !strings.Contains(routes, testenv.RouterAddr) {
					t.Fatalf("DSR backend's default route is not the router: %s", routes)
				}
			}
			stopAndCheckDetached(t, lab, d)
		})
	}
}

// 2,000 concurrent full-NAT flows to one backend through one SNAT address
// all get their own port.
func TestFullNATPorts(t *testing.T) {
	lab, d, vip := startFullNATEcho(t)
	conns := openMany(t, lab, vip, 2000, 3*time.Second)
	if len(conns) != 2000 {
		t.Fatalf("%d of 2000 connections opened", len(conns))
	}
	flows := cliJSON[[]struct{ SNAT, State string }](t, d, "conntrack", "get")
	ports := map[string]bool{}
	for _, f := range flows {
		if !strings.HasPrefix(f.SNAT, snatAddr.String()+":") {
			t.Fatalf("flow without the SNAT address: %+v", f)
		}
		if f.State == "established" {
			if ports[f.SNAT] {
				t.Fatalf("SNAT %s used twice", f.SNAT)
			}
			ports[f.SNAT] = true
		}
	}
	if len(ports) < 2000 {
		t.Fatalf("%d established flows with distinct ports, want 2000", len(ports))
	}
	if st := statsJSON(t, d); st.Dataplane.SNATPortsInUse < 2000 {
		t.Fatalf("stat shows %d SNAT ports in use", st.Dataplane.SNATPortsInUse)
	}
}

// With a tiny port range, new flows beyond it are refused and counted;
// the flows that have a port keep working.
func TestFullNATExhaustion(t *testing.T) {
	lab, d, vip := startFullNATEcho(t, "--snat-ports", "40000-40063")
	conns := openMany(t, lab, vip, 300, 700*time.Millisecond)
	if len(conns) == 0 || len(conns) > 64 {
		t.Fatalf("%d of 300 connections opened over 64 ports", len(conns))
	}
	if got := statsJSON(t, d).Drops["snat_exhausted"]; got == 0 {
		t.Fatal("snat_exhausted not counted")
	}
	for i, c := range conns {
		if err := c.roundTrip(fmt.Sprintf("still here %d", i)); err != nil {
			t.Fatalf("a flow with a port broke: %v", err)
		}
	}
}

// startFullNATEcho is a one-backend lab with a full-NAT echo service on
// VIP:3307 (backend :3306), ready; it returns the service's address.
func startFullNATEcho(t *testing.T, extra ...string) (*testenv.Lab, *testenv.Daemon, string) {
	t.Helper()
	lab, servers := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 1, Router: true})
	d := startDaemonIn(t, lab, t.TempDir(), append(prepareMode(t, lab, servers, fwdmode.FullNAT), extra...)...)
	vip := lab.VIP.String() + ":3307"
	cli(t, d, "service", "add", "--vip", vip, "--mode", "fullnat")
	cli(t, d, "backend", "add", "--service", "1", "--address", lab.BackendAddrs[0].String()+":3306")
	if err := testenv.WaitFor(10*time.Second, func() error { _, err := dialEcho(t, lab, vip); return err }); err != nil {
		t.Fatal(err)
	}
	return lab, d, vip
}

// openMany opens n echo connections in parallel, each given timeout, and
// returns those that got the backend's greeting.
func openMany(t *testing.T, lab *testenv.Lab, addr string, n int, timeout time.Duration) []*echoConn {
	t.Helper()
	var mu sync.Mutex
	var out []*echoConn
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			conn, err := lab.Client.DialContext(ctx, "tcp4", addr)
			if err != nil {
				return
			}
			ec := &echoConn{conn: conn, r: bufio.NewReader(conn)}
			conn.SetReadDeadline(time.Now().Add(timeout))
			if _, err := ec.r.ReadString('\n'); err != nil { // the greeting
				conn.Close()
				return
			}
			mu.Lock()
			out = append(out, ec)
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range out {
			c.conn.Close()
		}
	})
	return out
}

// A UDP service whose backend port is closed: the client hears ICMP port
// unreachable about its packet to the VIP (a connected socket reports it).
func TestUDPPortUnreachable(t *testing.T) {
	for _, mode := range []fwdmode.Mode{fwdmode.NAT, fwdmode.FullNAT} {
		t.Run(mode.String(), func(t *testing.T) {
			lab, d := startModeLab(t, mode)
			cli(t, d, "service", "add", "--vip", lab.VIP.String()+":9999", "--proto", "udp", "--mode", mode.String())
			cli(t, d, "backend", "add", "--service", "3", "--address", lab.BackendAddrs[0].String())
			err := testenv.WaitFor(5*time.Second, func() error {
				_, err := lab.Client.UDPRequest(lab.VIP.String()+":9999", "anyone?", 500*time.Millisecond)
				if errors.Is(err, syscall.ECONNREFUSED) {
					return nil
				}
				return fmt.Errorf("want connection refused, got %v", err)
			})
			if err != nil {
				t.Fatal(err)
			}
			if st := statsJSON(t, d); st.Dataplane.ICMPTranslated == 0 {
				t.Fatalf("no ICMP translated: %+v", st.Dataplane)
			}
		})
	}
}

// ICMP echo to a VIP is answered, counted, and subject to the firewall.
func TestEchoToVIP(t *testing.T) {
	lab, d := startLab(t, testenv.TwoArm)
	if err := lab.Client.Ping(lab.VIP, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := statsJSON(t, d).Dataplane.EchoReplies; got != 1 {
		t.Fatalf("echo replies %d, want 1", got)
	}
	cli(t, d, "fw", "add", "--network", "10.0.1.0/24", "--protocol", "icmp")
	if err := lab.Client.Ping(lab.VIP, 500*time.Millisecond); err == nil {
		t.Fatal("echo answered through a firewall rule")
	}
	if rules := cliJSON[[]api.FirewallRule](t, d, "fw", "get"); rules[0].DroppedPackets != 1 {
		t.Fatalf("rule counted %d", rules[0].DroppedPackets)
	}
}
