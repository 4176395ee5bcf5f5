package bpf_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
	"github.com/scmlb-xsk/scmlb-xsk/xsk"
)

// Bug 8 of issue 9: a backend's own packets (replies, answers to the host's
// health probes) are not client traffic: a firewall rule or DoS policy
// covering the backend's network must not drop them, as long as they come
// in on the backend interface from the backend's next hop.
func TestFiltersSkipBackendTraffic(t *testing.T) {
	prog := load(t)
	_, backends := fixtureServices()
	if err := prog.SetBackends(backends); err != nil {
		t.Fatal(err)
	}
	if err := prog.SetFirewall([]bpf.FirewallRule{rule(0, "10.0.2.0/24", fixture.ProtoTCP, anyPort, anyPort)}); err != nil {
		t.Fatal(err)
	}
	if err := prog.SetDosPolicies([]bpf.DosPolicy{{Slot: 0, Proto: fixture.ProtoUDP, LimitPPS: 5, Block: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	reply := fixture.Cases()[5].Frame // backend1:80 -> client, from BackendMAC1
	probeAnswer := fixture.Frame{SrcMAC: fixture.BackendMAC1, DstMAC: fixture.LBDownMAC, Src: fixture.Backend1,
		Dst: netip.MustParseAddr("10.0.2.1"), Proto: fixture.ProtoUDP, SrcPort: 9090, DstPort: 40000}.Bytes()
	spoofed := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBDownMAC, Src: fixture.Backend1, Dst: fixture.Client,
		Proto: fixture.ProtoTCP, SrcPort: 80, DstPort: 40000, TCPFlags: fixture.FlagACK}.Bytes()
	check := func(stage string, frame []byte, dropped bool) {
		t.Helper()
		if got := run(t, prog, frame) == xdpDrop; got != dropped {
			t.Errorf("%s: dropped=%v, want %v", stage, got, dropped)
		}
	}
	// Not yet known as a backend host: the filters apply.
	check("unknown backend", reply, true)
	if err := prog.SetBackendHosts(map[netip.Addr][6]byte{fixture.Backend1: fixture.BackendMAC1}); err != nil {
		t.Fatal(err)
	}
	check("backend interface not set", reply, true)
	// Test runs see the loopback device (ifindex 1) as the ingress interface.
	if err := prog.SetBackendInterface(1); err != nil {
		t.Fatal(err)
	}
	check("reply", reply, false)
	for i := 0; i < 20; i++ {
		check("answer to the host's probe", probeAnswer, false)
	}
	check("backend address from another MAC", spoofed, true)
	if err := prog.SetBackendInterface(7); err != nil {
		t.Fatal(err)
	}
	check("reply on another interface", reply, true)
	drops, _ := prog.DosDrops()
	if drops[0].Packets != 0 {
		t.Fatalf("the DoS policy counted backend traffic: %+v", drops)
	}
}

// xdpMd is struct xdp_md, the context BPF_PROG_TEST_RUN takes.
type xdpMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// Bug 3 of issue 9: RX queue MAX_QUEUES of one interface must not reach
// the XSKMAP key of the next interface's queue 0.
func TestQueueBeyondLayoutIsNotSteered(t *testing.T) {
	testenv.RequireRoot(t)
	q := bpf.MaxQueues + 1
	a, err := testenv.NewNS(t, testenv.UniquePrefix()+"-q")
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.VethQueues(a, "m0", a, "m1", q); err != nil {
		t.Fatal(err)
	}
	for _, ifc := range []string{"m0", "m1"} {
		if _, err := a.IP("link", "set", ifc, "up"); err != nil {
			t.Fatal(err)
		}
	}
	prog, err := bpf.Load()
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	svcs, _ := fixtureServices()
	if err := prog.SetServices(svcs); err != nil {
		t.Fatal(err)
	}
	err = a.Do(func() error {
		m0, err := net.InterfaceByName("m0")
		if err != nil {
			return err
		}
		m1, _ := net.InterfaceByName("m1")
		// m1's queue 0 has a socket, in slot 1: XSKMAP key MaxQueues.
		sock, err := xsk.Open(m1.Index, 0, xsk.Options{NumFrames: 64, FrameSize: 2048, RingSize: 32})
		if err != nil {
			return err
		}
		defer sock.Close()
		if err := prog.SetInterfaceSlot(m0.Index, 0); err != nil {
			return err
		}
		if err := prog.SetInterfaceSlot(m1.Index, 1); err != nil {
			return err
		}
		if err := prog.RegisterSocket(1, 0, sock.FD()); err != nil {
			return err
		}
		syn := fixture.Cases()[0].Frame
		for _, c := range []struct {
			ifindex, queue int
			want           uint32
		}{{m1.Index, 0, xdpRedirect}, {m0.Index, bpf.MaxQueues, xdpPass}} {
			ret, err := prog.XDP().Run(&ebpf.RunOptions{Data: syn,
				Context: xdpMd{DataEnd: uint32(len(syn)), IngressIfindex: uint32(c.ifindex), RxQueueIndex: uint32(c.queue)}})
			if err != nil {
				return err
			}
			if ret != c.want {
				t.Errorf("ifindex %d queue %d: action %d, want %d", c.ifindex, c.queue, ret, c.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := prog.VerdictStats()
	if st["no_socket"].Packets != 1 {
		t.Fatalf("queue beyond the layout not counted as no_socket: %v", st)
	}
}

// The same exemption for an IPv6 backend host, keyed by its 16 bytes.
func TestFiltersSkipBackendTraffic6(t *testing.T) {
	prog := load(t)
	_, backends := fixtureServices()
	if err := prog.SetBackends(backends); err != nil {
		t.Fatal(err)
	}
	if err := prog.SetFirewall([]bpf.FirewallRule{rule(0, "2001:db8:2::/64", fixture.ProtoTCP, anyPort, anyPort)}); err != nil {
		t.Fatal(err)
	}
	reply := fixture.Frame{SrcMAC: fixture.BackendMAC1, DstMAC: fixture.LBDownMAC, Src: fixture.Backend61, Dst: fixture.Client6,
		Proto: fixture.ProtoTCP, SrcPort: 80, DstPort: 40000, TCPFlags: fixture.FlagACK}
	spoofed := reply
	spoofed.SrcMAC = fixture.ClientMAC
	if run(t, prog, reply.Bytes()) != xdpDrop {
		t.Fatal("an unknown backend host was exempt")
	}
	if err := prog.SetBackendHosts(map[netip.Addr][6]byte{fixture.Backend61: fixture.BackendMAC1}); err != nil {
		t.Fatal(err)
	}
	if err := prog.SetBackendInterface(1); err != nil {
		t.Fatal(err)
	}
	if run(t, prog, reply.Bytes()) == xdpDrop {
		t.Fatal("the IPv6 backend's reply was filtered")
	}
	if run(t, prog, spoofed.Bytes()) != xdpDrop {
		t.Fatal("the IPv6 backend address from another MAC was exempt")
	}
}

// TestRun gives the action the program takes for a frame on an interface.
func TestTestRun(t *testing.T) {
	prog := load(t)
	svcs, _ := fixtureServices()
	prog.SetServices(svcs)
	if err := prog.SetFirewall([]bpf.FirewallRule{rule(0, "10.9.0.0/16", 0, anyPort, anyPort)}); err != nil {
		t.Fatal(err)
	}
	// Loopback (ifindex 1) exists in every namespace; no socket is
	// registered, so a steered frame comes back as a pass.
	if got, err := prog.TestRun(fixture.Cases()[0].Frame, 1); err != nil || got != xdpPass {
		t.Fatalf("steered frame without a socket: %d %v", got, err)
	}
	if got, _ := prog.TestRun(pkt("10.9.1.1", fixture.ProtoTCP, 1, 80, fixture.FlagSYN), 1); got != xdpDrop {
		t.Fatalf("denied source: %d", got)
	}
	if v, _ := prog.VerdictStats(); v["no_socket"].Packets != 1 || v["fw_drop"].Packets != 1 {
		t.Fatalf("verdicts %v", v)
	}
}

// A held program drops what it would steer (the workers are gone) and
// passes the rest; Hold hands out a descriptor per attached link.
func TestHold(t *testing.T) {
	prog := loadWithSocket(t)
	svcs, _ := fixtureServices()
	prog.SetServices(svcs)
	files, err := prog.Hold(time.Minute)
	if err != nil || len(files) != prog.Attached() {
		t.Fatalf("hold: %d files, %d links, %v", len(files), prog.Attached(), err)
	}
	steered, other := fixture.Cases()[0].Frame, fixture.Cases()[7].Frame // tcp syn to vip:80, tcp to a host address
	if run(t, prog, steered) != xdpDrop || run(t, prog, other) != xdpPass {
		t.Fatal("held program: steered traffic must drop, the rest pass")
	}
	if v, _ := prog.VerdictStats(); v["held"].Packets != 1 {
		t.Fatalf("verdicts %v", v)
	}
	files, err = prog.Hold(-time.Minute) // a hold in the past is over
	if err != nil || run(t, prog, steered) != xdpRedirect {
		t.Fatalf("expired hold: %v", err)
	}
}
