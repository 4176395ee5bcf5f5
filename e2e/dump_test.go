package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// startDump runs `scmlb-xsk dump args...` and waits until the daemon has
// started capturing.
func startDump(t *testing.T, d *testenv.Daemon, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	before := strings.Count(d.Output(), "dump started")
	cmd := exec.Command(d.Bin, append([]string{"--socket", d.Socket, "dump"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := testenv.WaitFor(5*time.Second, func() error {
		if strings.Count(d.Output(), "dump started") == before {
			return fmt.Errorf("dump not started: %s", out.String())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

func TestDumpToPcap(t *testing.T) {
	testenv.RequireTool(t, "tcpdump", "tcpdump")
	lab, d := startLab(t, testenv.TwoArm)
	file := filepath.Join(t.TempDir(), "lb.pcapng")
	// Bounded by time, not count: the XDP and worker captures arrive on two
	// streams, and a count could be reached by one before the other shows.
	cmd, out := startDump(t, d, "-w", file, "--port", "80", "--count", "1000", "--duration", "3s")
	spread(t, lab, 3)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dump: %v: %s", err, out)
	}
	var written int
	if _, err := fmt.Sscanf(out.String(), "%d packets written to "+file+"\n", &written); err != nil || written < 40 {
		t.Fatalf("dump printed %q, want at least 40 packets (3 connections at both stages)", out)
	}
	var stderr bytes.Buffer
	tcpdump := exec.Command("tcpdump", "-nn", "-r", file)
	tcpdump.Stderr = &stderr // "reading from file ...": not a packet
	td, err := tcpdump.Output()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, stderr.String())
	}
	text := string(td)
	vip, b := regexp.QuoteMeta(lab.VIP.String()), `10\.0\.2\.1[12]`
	for what, re := range map[string]string{
		"client SYN to the VIP (xdp)":        `10\.0\.1\.2\.\d+ > ` + vip + `\.80: Flags \[S\]`,
		"SYN DNATed to a backend (worker)":   `10\.0\.1\.2\.\d+ > ` + b + `\.80: Flags \[S\]`,
		"SYN-ACK from a backend (xdp)":       b + `\.80 > 10\.0\.1\.2\.\d+: Flags \[S\.\]`,
		"SYN-ACK SNATed to the VIP (worker)": vip + `\.80 > 10\.0\.1\.2\.\d+: Flags \[S\.\]`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("tcpdump shows no %s:\n%s", what, text)
		}
	}
	if n := strings.Count(strings.TrimSpace(text), "\n") + 1; n != written {
		t.Errorf("tcpdump read %d packets, the dump wrote %d", n, written)
	}
	// The verdicts travel as packet comments.
	f, _ := os.Open(file)
	defer f.Close()
	verdicts := map[string]int{}
	api.ReadPcapng(f, func(p api.DumpPacket) error { verdicts[p.Stage+" "+p.Verdict]++; return nil })
	for _, v := range []string{"xdp steer_service", "xdp steer_reply", "worker forward", "worker reply"} {
		if verdicts[v] == 0 {
			t.Errorf("no %q packets: %v", v, verdicts)
		}
	}

	// Live to stdout, XDP only, UDP only.
	cmd, out = startDump(t, d, "--at", "xdp", "--proto", "udp", "--count", "2")
	if _, err := lab.Client.UDPRequest(lab.VIP.String()+":9090", "live", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("live dump: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "xdp    steer_service        10.0.1.2:") ||
		!strings.Contains(lines[0], "> 10.0.100.1:9090 udp") || !strings.Contains(lines[1], "steer_reply") {
		t.Fatalf("live output:\n%s", out)
	}
	stopAndCheckDetached(t, lab, d)
}
