package bpf_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// The shipped backend-side decapsulation program, through
// BPF_PROG_TEST_RUN: the output frame is the inner packet under the same
// Ethernet header, or the input unchanged.
func TestDecap(t *testing.T) {
	testenv.RequireRoot(t)
	d, err := bpf.LoadDecap()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SetAddrs([]netip.Addr{fixture.Backend1}); err != nil {
		t.Fatal(err)
	}
	inner := fixture.Frame{SrcMAC: fixture.LBDownMAC, DstMAC: fixture.BackendMAC1, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoTCP, SrcPort: 40000, DstPort: 80, TCPFlags: fixture.FlagSYN, Payload: []byte("hello")}
	encap := func(dst netip.Addr, innerIP []byte) []byte {
		return fixture.Frame{SrcMAC: fixture.LBDownMAC, DstMAC: fixture.BackendMAC1, Src: netip.MustParseAddr("172.16.1.2"),
			Dst: dst, Proto: 4, Payload: innerIP}.Bytes()
	}
	ours := encap(fixture.Backend1, inner.Bytes()[14:])
	other := encap(fixture.Backend2, inner.Bytes()[14:])
	short := encap(fixture.Backend1, inner.Bytes()[14:24])
	run := func(frame []byte) []byte {
		t.Helper()
		out := make([]byte, len(frame)+64)
		opts := &ebpf.RunOptions{Data: frame, DataOut: out}
		ret, err := d.Program().Run(opts)
		if err != nil || ret != xdpPass {
			t.Fatalf("run: %d %v", ret, err)
		}
		return opts.DataOut
	}
	for _, c := range []struct {
		name  string
		frame []byte
		want  []byte
	}{
		{"ipip to this host", ours, inner.Bytes()},
		{"ipip to another host", other, other},
		{"not ipip", inner.Bytes(), inner.Bytes()},
		{"inner header cut short", short, short},
	} {
		if got := run(c.frame); !bytes.Equal(got, c.want) {
			t.Errorf("%s:\n%x\nwant\n%x", c.name, got, c.want)
		}
	}
	// With VIPs listed, only packets to them.
	if err := d.SetVIPs([]netip.Addr{netip.MustParseAddr("10.0.100.9")}); err != nil {
		t.Fatal(err)
	}
	if got := run(ours); !bytes.Equal(got, ours) {
		t.Error("decapsulated a packet to a VIP not listed")
	}
	d.SetVIPs([]netip.Addr{fixture.VIP})
	if got := run(ours); !bytes.Equal(got, inner.Bytes()) {
		t.Error("did not decapsulate a packet to a listed VIP")
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"done": 2, "not_ours": 1, "pass": 1, "malformed": 1, "not_vip": 1}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("stat %s = %d, want %d (%v)", k, st[k], v, st)
		}
	}
}
