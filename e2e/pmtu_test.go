package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// Path MTU through the VIP (issue 10): 10 MiB down and 10 MiB up, with DF
// set as Linux TCP sets it, complete with the right sha256 when
//   - the LB's backend link is 1400 while the backends' links are 1500:
//     the load balancer answers oversized packets itself (and clamps the
//     MSS of SYNs to what its link takes, since frames its NIC drops it
//     cannot answer for);
//   - a router on the client path has a 1400-byte hop: its
//     fragmentation-needed about the VIP's packets reaches the backend,
//     translated.
//
// The ICMP involved is checked in a dump capture.
func TestPathMTU(t *testing.T) {
	for _, c := range []struct {
		name    string
		cfg     testenv.RoutedConfig
		verdict string // of the ICMP message the load balancer sends
	}{
		{"lb-link-1400", testenv.RoutedConfig{Backends: 1, BackendLinkMTU: 1400}, "answer"},
		{"client-path-hop-1400", testenv.RoutedConfig{Backends: 1, HopMTU: 1400}, "forward"},
	} {
		for _, mode := range []fwdmode.Mode{fwdmode.NAT, fwdmode.FullNAT, fwdmode.DSRIPIP} {
			t.Run(c.name+"/"+mode.String(), func(t *testing.T) {
				pmtu(t, c.cfg, mode, c.verdict)
			})
		}
	}
}

func pmtu(t *testing.T, cfg testenv.RoutedConfig, mode fwdmode.Mode, verdict string) {
	testenv.RequireRoot(t)
	lab, _, err := testenv.NewRoutedLab(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemonIn(t, lab, t.TempDir(), prepareMode(t, lab, serveBackends(t, lab), mode)...)
	cli(t, d, "service", "add", "--vip", lab.VIP.String()+":80", "--mode", mode.String())
	cli(t, d, "backend", "add", "--service", "1", "--address", lab.BackendAddrs[0].String())
	if err := testenv.WaitFor(10*time.Second, func() error { _, err := httpGets(lab, lab.Client, 1); return err }); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "icmp.pcapng")
	dump, out := startDump(t, d, "-w", file, "--at", "worker", "--proto", "icmp", "--count", "1", "--duration", "60s")

	transferBothWays(t, lab.Client, lab.VIP.String(), 10<<20)

	if err := waitCmd(dump, 10*time.Second); err != nil {
		t.Fatalf("no ICMP captured by the workers: %v %s", err, out)
	}
	checkCapturedICMP(t, lab, file, mode, verdict)
}

// oneWorkerPacket reads a capture file that must hold exactly one packet,
// seen at a worker with verdict, and returns its bytes.
func oneWorkerPacket(t *testing.T, file, verdict string) []byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pkts []api.DumpPacket
	api.ReadPcapng(f, func(p api.DumpPacket) error { pkts = append(pkts, p); return nil })
	if len(pkts) != 1 || pkts[0].Stage != "worker" || pkts[0].Verdict != verdict {
		t.Fatalf("captured %+v, want one worker %s", pkts, verdict)
	}
	return pkts[0].Data
}

// transferBothWays downloads and uploads size bytes through host with
// HTTP and checks both arrive whole (sha256).
func transferBothWays(t *testing.T, cl *testenv.NS, host string, size int) {
	t.Helper()
	body := testenv.Payload(size)
	want := sha256.Sum256(body)
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: cl.DialContext, DisableKeepAlives: true}}
	resp, err := hc.Get(fmt.Sprintf("http://%s/bytes?n=%d", host, size))
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("download: %d of %d bytes, sha256 ok %v, %v", n, size, bytes.Equal(h.Sum(nil), want[:]), err)
	}
	resp, err = hc.Post(fmt.Sprintf("http://%s/sha256", host), "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != fmt.Sprintf("%d %x", size, want) {
		t.Fatalf("upload: the backend got %q", got)
	}
}

// checkCapturedICMP reads the one ICMP message the workers handled: a
// fragmentation-needed, either the load balancer's own answer to the client
// (from the VIP) or a router's, translated for the backend.
func checkCapturedICMP(t *testing.T, lab *testenv.Lab, file string, mode fwdmode.Mode, verdict string) {
	t.Helper()
	data := oneWorkerPacket(t, file, verdict)
	if len(data) > 34 && data[23] == 4 { // dsr-ipip: the inner packet
		data = append(data[:14:14], data[34:]...)
	}
	var p packet.Packet
	if r := packet.Decode(data, &p); r != packet.OK || p.ICMP.Type != 3 || p.ICMP.Code != 4 {
		t.Fatalf("captured %v: %+v", r, p.ICMP)
	}
	addr := func(a packet.Addr) netip.Addr { return a.IP() }
	switch {
	case verdict == "answer":
		if addr(p.Src) != lab.VIP || addr(p.Dst) != lab.ClientAddr {
			t.Fatalf("the LB's error goes %v -> %v, want VIP -> client", addr(p.Src), addr(p.Dst))
		}
	case mode.DSR():
		if addr(p.Dst) != lab.VIP {
			t.Fatalf("the router's error reached the DSR backend as %v -> %v", addr(p.Src), addr(p.Dst))
		}
	default:
		if addr(p.Dst) != lab.BackendAddrs[0] || addr(p.ICMP.Inner.Src) != lab.BackendAddrs[0] {
			t.Fatalf("the router's error reached the backend as %v -> %v quoting %v", addr(p.Src), addr(p.Dst), p.ICMP.Inner)
		}
	}
}

// The daemon follows a link's MTU changed under it: after the backend
// link goes down to 1400, 4 MiB each way still arrive whole (forwarding
// for the old MTU, every larger frame was dropped on the AF_XDP send).
func TestLinkMTUFollowed(t *testing.T) {
	lab, d := startLab(t, testenv.TwoArm)
	if _, err := lab.LB.IP("link", "set", lab.BackendIf, "mtu", "1400"); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitFor(5*time.Second, func() error {
		if !strings.Contains(d.Output(), "link MTU changed") {
			return fmt.Errorf("not seen")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the re-plan follows the log line
	transferBothWays(t, lab.Client, lab.VIP.String(), 4<<20)
	if st := statsJSON(t, d); st.Dataplane.FragNeededSent == 0 {
		t.Fatal("no fragmentation-needed sent for the smaller link")
	}
	stopAndCheckDetached(t, lab, d)
}
