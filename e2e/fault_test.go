package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

func stats(t *testing.T, d *testenv.Daemon) api.Stats {
	t.Helper()
	st, err := api.NewClient(d.Socket).Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestConntrackFull: far more flows than the table holds are evicted, the
// daemon keeps running and keeps forwarding.
func TestConntrackFull(t *testing.T) {
	lab, d := startLab(t, testenv.TwoArm, "--conntrack-size", "256")
	capacity := stats(t, d).Conntrack.Capacity
	const flows = 600
	for i := 0; i < flows; i++ {
		if _, err := lab.Client.UDPRequest(lab.VIP.String()+":9090", "x", 2*time.Second); err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
	}
	ct := stats(t, d).Conntrack
	t.Logf("capacity %d, %d flows: %+v", capacity, flows, ct)
	// The kernel may reuse a client port, so count distinct flows by inserts.
	// Nothing expires this fast, so every insert that did not stay evicted
	// one. Eviction is per shard (64 of 4 here): a shard that drew fewer
	// flows than it holds leaves the table a little short of full.
	if ct.Entries > capacity || ct.Entries < capacity*9/10 || ct.Inserts < 2*uint64(capacity) ||
		ct.Evictions != ct.Inserts-uint64(ct.Entries) {
		t.Fatalf("conntrack %+v after %d flows into %d slots", ct, flows, capacity)
	}
	httpOK(t, lab, 10)
	if done, _ := d.Exited(); done {
		t.Fatal("daemon died")
	}
	stopAndCheckDetached(t, lab, d)
}

// TestMalformedPackets: packets the XDP program cannot parse are passed and
// counted; packets it steers but the worker rejects are dropped and counted;
// the worker keeps forwarding.
func TestMalformedPackets(t *testing.T) {
	lab, d := startLab(t, testenv.TwoArm)
	before := stats(t, d)
	udp := fixture.Frame{Src: lab.ClientAddr, Dst: lab.VIP, Proto: fixture.ProtoUDP, SrcPort: 5000, DstPort: 9090,
		Payload: []byte("abc")}.Bytes()[14:]
	// UDP cut to 6 bytes: the XDP program needs only the ports and steers
	// it; the worker finds no whole UDP header.
	cut := append([]byte(nil), udp[:26]...)
	binary.BigEndian.PutUint16(cut[2:], 26)
	// TCP with a 10-byte header: the XDP program cannot read its flags.
	tcp := fixture.Frame{Src: lab.ClientAddr, Dst: lab.VIP, Proto: fixture.ProtoTCP, SrcPort: 5000, DstPort: 80}.Bytes()[14:]
	short := append([]byte(nil), tcp[:30]...)
	binary.BigEndian.PutUint16(short[2:], 30)
	// A first fragment to the VIP: passed to the kernel, never to a worker.
	frag := append([]byte(nil), udp...)
	binary.BigEndian.PutUint16(frag[6:], 0x2000)
	const n = 25
	var pkts [][]byte
	for i := 0; i < n; i++ {
		pkts = append(pkts, cut, short, frag)
	}
	if err := lab.Client.SendIPv4(lab.VIP, pkts); err != nil {
		t.Fatal(err)
	}
	var after api.Stats
	if err := testenv.WaitFor(3*time.Second, func() error {
		after = stats(t, d)
		if got := after.Drops["truncated"] - before.Drops["truncated"]; got != n {
			return fmt.Errorf("truncated drops %d, want %d", got, n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := after.XDPVerdicts["malformed"].Packets - before.XDPVerdicts["malformed"].Packets; got != n {
		t.Errorf("xdp malformed %d, want %d", got, n)
	}
	if got := after.XDPVerdicts["fragment"].Packets - before.XDPVerdicts["fragment"].Packets; got != n {
		t.Errorf("xdp fragments %d, want %d", got, n)
	}
	httpOK(t, lab, 10)
	b, _ := json.Marshal(after.Drops)
	t.Logf("drops after: %s", b)
	stopAndCheckDetached(t, lab, d)
}
