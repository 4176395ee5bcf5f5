package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

// Per-flow trace against a running daemon (issue 14, part 2): a tracked
// flow shows its conntrack entry and backend; a new flow's Maglev pick is
// the backend a connection from that port then reaches; a denied source
// is dropped by the loaded XDP program's test run.
func TestTrace(t *testing.T) {
	lab, d := startControlLab(t, 2, t.TempDir())
	vip := lab.VIP.String() + ":3307"
	cli(t, d, "service", "add", "--vip", vip)
	for _, b := range lab.BackendAddrs {
		cli(t, d, "backend", "add", "--service", "1", "--address", b.String()+":3306")
	}
	waitNewFlows(t, d, 1)
	conn, err := dialEcho(t, lab, vip)
	if err != nil {
		t.Fatal(err)
	}
	src := lab.ClientAddr.String() + fmt.Sprintf(":%d", conn.conn.LocalAddr().(*net.TCPAddr).Port)
	tr := cliJSON[api.Trace](t, d, "trace", "--src", src, "--dst", vip)
	if tr.XDPAction != "XDP_REDIRECT" || tr.Conntrack == nil || tr.Conntrack.State != "established" || tr.Pick != "tracked flow" ||
		tr.Backend != map[string]string{"backend1": lab.BackendAddrs[0].String(), "backend2": lab.BackendAddrs[1].String()}[conn.backend]+":3306" {
		t.Fatalf("tracked flow (on %s): %+v", conn.backend, tr)
	}
	text := cli(t, d, "trace", "--src", src, "--dst", vip)
	if !strings.Contains(text, "5 conntrack") || !strings.Contains(text, "established") {
		t.Fatalf("trace printed %q", text)
	}

	// New flows: the pick is where a connection from that port goes.
	for port := 45000; port < 45010; port++ {
		src := fmt.Sprintf("%s:%d", lab.ClientAddr, port)
		tr := cliJSON[api.Trace](t, d, "trace", "--src", src, "--dst", vip)
		if tr.Conntrack != nil || tr.Pick != "maglev (new flow)" || tr.Rewrite == nil || tr.Rewrite.Dst != tr.Backend {
			t.Fatalf("new flow %+v", tr)
		}
		var c net.Conn
		err := lab.Client.Do(func() error {
			dl := net.Dialer{LocalAddr: &net.TCPAddr{Port: port}, Timeout: 3 * time.Second}
			var err error
			c, err = dl.DialContext(context.Background(), "tcp4", vip)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		name, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		want := map[string]string{lab.BackendAddrs[0].String() + ":3306": "backend1\n", lab.BackendAddrs[1].String() + ":3306": "backend2\n"}[tr.Backend]
		if name != want {
			t.Fatalf("port %d: trace picked %s, the connection reached %q", port, tr.Backend, name)
		}
	}

	// A denied source: the rule, and the program's real verdict.
	cli(t, d, "fw", "add", "--network", "192.0.2.0/24", "--protocol", "tcp")
	tr = cliJSON[api.Trace](t, d, "trace", "--src", "192.0.2.7:1234", "--dst", vip)
	if tr.FirewallRule != 1 || tr.XDPAction != "XDP_DROP" || tr.Verdict != "dropped in XDP" {
		t.Fatalf("denied source %+v", tr)
	}
	if r := fwRules(t, d); r[0].DroppedPackets != 1 {
		t.Fatalf("the trace's packet was not counted by the rule: %+v", r)
	}
	if _, err := d.CLI("trace", "--src", "192.0.2.7", "--dst", vip); err == nil || !strings.Contains(err.Error(), "want IP:PORT") {
		t.Fatalf("bad --src: %v", err)
	}
	stopAndCheckDetached(t, lab, d)
}
