package e2e

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// Conntrack kept across restarts (issue 14, part 3): 10 rate-limited
// downloads, 5 through a nat and 5 through a fullnat service, are in
// progress when the daemon is stopped and started again; every one
// completes with the right sha256, from flows restored (not rebuilt: a
// full-NAT flow cannot be). The SNAT address is the LB's own, so the
// daemon stops with --restart-hold: its XDP program stays attached and
// drops the flows' packets until the next daemon takes it over, where the
// kernel would answer them with RSTs. A corrupt snapshot is reported and
// ignored.
func TestConntrackSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	lab, _ := labWithServers(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2})
	snat := netip.MustParseAddr("10.0.2.100")
	if _, err := lab.LB.IP("addr", "add", snat.String()+"/24", "dev", lab.BackendIf); err != nil {
		t.Fatal(err)
	}
	vip, b1, b2 := lab.VIP.String(), lab.BackendAddrs[0].String(), lab.BackendAddrs[1].String()
	args := []string{"--snat-addr", snat.String(), "--snat-ports", "61000-65000", "--restart-hold", "10s",
		"--service", fmt.Sprintf("tcp/%s:80=%s,%s", vip, b1, b2)}
	d := startDaemonIn(t, lab, dir, args...)
	cli(t, d, "service", "add", "--vip", vip+":8080", "--mode", "fullnat")
	cli(t, d, "backend", "add", "--service", "2", "--address", b1+":80")
	cli(t, d, "backend", "add", "--service", "2", "--address", b2+":80")
	waitNewFlows(t, d, 1)
	waitNewFlows(t, d, 2)

	const size, rate = 6 << 20, 1 << 20 // 6 s each
	want := sha256.Sum256(testenv.Payload(size))
	type result struct {
		url string
		n   int64
		ok  bool
		err error
	}
	done := make(chan result, 10)
	for i := 0; i < 10; i++ {
		url := fmt.Sprintf("http://%s/bytes?n=%d&rate=%d", vip, size, rate)
		if i%2 == 1 {
			url = fmt.Sprintf("http://%s:8080/bytes?n=%d&rate=%d", vip, size, rate)
		}
		go func() {
			hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: lab.Client.DialNoKeepAlive}}
			resp, err := hc.Get(url)
			if err != nil {
				done <- result{url: url, err: err}
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			done <- result{url: url, n: n, ok: string(h.Sum(nil)) == string(want[:]), err: err}
		}()
	}
	time.Sleep(2 * time.Second)
	if flows := len(cliJSON[[]any](t, d, "conntrack", "get")); flows < 10 {
		t.Fatalf("%d flows tracked before the restart", flows)
	}
	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Output(), "conntrack saved") || !strings.Contains(d.Output(), "xdp held for the next daemon") {
		t.Fatalf("no snapshot written or xdp not held:\n%s", d.Output())
	}
	d = startDaemonIn(t, lab, dir, args...)
	if !strings.Contains(d.Output(), "took over the held xdp program") {
		t.Fatalf("the held program was not taken over:\n%s", d.Output())
	}
	for i := 0; i < 10; i++ {
		r := <-done
		if r.err != nil || r.n != size || !r.ok {
			t.Fatalf("%s across the restart: %d of %d bytes, sha256 ok %v, %v", r.url, r.n, size, r.ok, r.err)
		}
	}
	if !strings.Contains(d.Output(), "conntrack restored") || !strings.Contains(d.Output(), `"flows": 10, "dropped": 0`) {
		t.Fatalf("no restore logged:\n%s", d.Output())
	}
	if st := statsJSON(t, d); st.Dataplane.RebuiltFlows != 0 {
		t.Fatalf("flows were rebuilt, not restored: %+v", st.Dataplane)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json.conntrack")); !os.IsNotExist(err) {
		t.Fatalf("the snapshot was not consumed: %v", err)
	}

	// A corrupt snapshot: reported, set aside, ignored; the daemon serves.
	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "state.json.conntrack")
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	os.WriteFile(snap, b, 0o600)
	// Without --restart-hold this time (so it detaches at the end); it
	// still takes over the program the last daemon held.
	d = startDaemonIn(t, lab, dir, args[:4]...)
	if !strings.Contains(d.Output(), "conntrack snapshot ignored") || !strings.Contains(d.Output(), "checksum") {
		t.Fatalf("corrupt snapshot not reported:\n%s", d.Output())
	}
	if _, err := os.Stat(snap + ".corrupt"); err != nil {
		t.Fatalf("corrupt snapshot not set aside: %v", err)
	}
	checkHTTPSpread(t, lab, 20, 3)
	stopAndCheckDetached(t, lab, d)
}
