package bpf_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
	"github.com/scmlb-xsk/scmlb-xsk/xsk"
)

const (
	xdpPass     = 2
	xdpRedirect = 4
)

func fixtureServices() (svcs, backends map[bpf.Endpoint]uint32) {
	svcs = map[bpf.Endpoint]uint32{
		{Addr: fixture.VIP, Port: fixture.HTTPPort, Proto: fixture.ProtoTCP}:    1,
		{Addr: fixture.VIP, Port: fixture.UDPPort, Proto: fixture.ProtoUDP}:     2,
		{Addr: fixture.VIP, Port: fixture.MySQLVPort, Proto: fixture.ProtoTCP}:  3,
		{Addr: fixture.VIP6, Port: fixture.HTTPPort, Proto: fixture.ProtoTCP}:   4,
		{Addr: fixture.VIP6, Port: fixture.UDPPort, Proto: fixture.ProtoUDP}:    5,
		{Addr: fixture.VIP6, Port: fixture.MySQLVPort, Proto: fixture.ProtoTCP}: 6,
	}
	backends = map[bpf.Endpoint]uint32{}
	for _, b := range []bpf.Endpoint{
		{Addr: fixture.Backend1, Port: fixture.HTTPPort, Proto: fixture.ProtoTCP},
		{Addr: fixture.Backend2, Port: fixture.HTTPPort, Proto: fixture.ProtoTCP},
		{Addr: fixture.Backend1, Port: fixture.MySQLPort, Proto: fixture.ProtoTCP},
		{Addr: fixture.Backend61, Port: fixture.HTTPPort, Proto: fixture.ProtoTCP},
		{Addr: fixture.Backend62, Port: fixture.HTTPPort, Proto: fixture.ProtoTCP},
	} {
		backends[b] = 1
	}
	return
}

// loadWithSocket loads the program and registers a real AF_XDP socket for
// queue 0 (the XSKMAP only takes bound sockets), in a throwaway namespace.
func loadWithSocket(t *testing.T) *bpf.Program {
	testenv.RequireRoot(t)
	a, _, err := testenv.NewVethPair(t, testenv.Endpoint{If: "v0"}, testenv.Endpoint{If: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := bpf.Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	var sock *xsk.Socket
	err = a.Do(func() error {
		ifc, err := net.InterfaceByName("v0")
		if err != nil {
			return err
		}
		sock, err = xsk.Open(ifc.Index, 0, xsk.Options{NumFrames: 64, FrameSize: 2048, RingSize: 32})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	if err := prog.RegisterSocket(0, 0, sock.FD()); err != nil {
		t.Fatal(err)
	}
	return prog
}

func run(t *testing.T, prog *bpf.Program, frame []byte) uint32 {
	t.Helper()
	ret, err := prog.XDP().Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatal(err)
	}
	return ret
}

func TestSteerVerdicts(t *testing.T) {
	prog := loadWithSocket(t)
	svcs, backends := fixtureServices()
	if err := prog.SetServices(svcs); err != nil {
		t.Fatal(err)
	}
	if err := prog.SetBackends(backends); err != nil {
		t.Fatal(err)
	}
	if err := prog.SetVIPs([]netip.Addr{fixture.VIP, fixture.VIP6}); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	for _, c := range fixture.Cases() {
		ret := run(t, prog, c.Frame)
		switch c.XDP {
		case fixture.Pass:
			if ret != xdpPass {
				t.Errorf("%s: verdict %d, want XDP_PASS", c.Name, ret)
			}
		case fixture.SteerService:
			want["steer_service"]++
			if ret != xdpRedirect {
				t.Errorf("%s: verdict %d, want XDP_REDIRECT", c.Name, ret)
			}
		case fixture.SteerReply:
			want["steer_reply"]++
			if ret != xdpRedirect {
				t.Errorf("%s: verdict %d, want XDP_REDIRECT", c.Name, ret)
			}
		}
	}
	got, err := prog.VerdictStats()
	if err != nil {
		t.Fatal(err)
	}
	// Fragments: IPv4 and IPv6. Malformed: truncated TCP and bad IHL;
	// truncated TCP over IPv6 and too many extension headers.
	want["fragment"], want["malformed"] = 2, 4
	for k, v := range want {
		if got[k].Packets != v {
			t.Errorf("verdict %s counted %d, want %d (all: %v)", k, got[k].Packets, v, got)
		}
	}
	protos, err := prog.ProtoStats()
	if err != nil {
		t.Fatal(err)
	}
	// The truncated TCP frame still has a whole IP header, so it counts as
	// tcp; the bad-IHL frame does not parse and counts as ipv4_other, and
	// the IPv6 one with too many extension headers as ipv6_other. NDP is
	// icmpv6.
	want = map[string]uint64{"tcp": 7, "udp": 3, "icmp": 6, "non_ip": 1, "ipv4_other": 1,
		"tcp6": 6, "udp6": 2, "icmpv6": 4, "ipv6_other": 1}
	for k, v := range want {
		if protos[k].Packets != v {
			t.Errorf("proto %s counted %d, want %d (all: %v)", k, protos[k].Packets, v, protos)
		}
	}
}

// TestRepliesToTheHostPass: a backend answering the host's own health probe
// is the kernel's business, not a worker's.
func TestRepliesToTheHostPass(t *testing.T) {
	prog := loadWithSocket(t)
	_, backends := fixtureServices()
	prog.SetBackends(backends)
	reply := fixture.Cases()[5].Frame // backend1:80 -> client
	if run(t, prog, reply) != xdpRedirect {
		t.Fatal("reply to a client not steered")
	}
	if err := prog.SetLocalAddrs([]netip.Addr{fixture.Client}); err != nil {
		t.Fatal(err)
	}
	if run(t, prog, reply) != xdpPass {
		t.Fatal("reply to a local address steered")
	}
	if err := prog.SetLocalAddrs(nil); err != nil {
		t.Fatal(err)
	}
	if run(t, prog, reply) != xdpRedirect {
		t.Fatal("local address not removed")
	}
}

func TestServiceRemovalStopsSteering(t *testing.T) {
	prog := loadWithSocket(t)
	svcs, _ := fixtureServices()
	if err := prog.SetServices(svcs); err != nil {
		t.Fatal(err)
	}
	syn := fixture.Cases()[0]
	if run(t, prog, syn.Frame) != xdpRedirect {
		t.Fatal("service not steered")
	}
	delete(svcs, bpf.Endpoint{Addr: fixture.VIP, Port: fixture.HTTPPort, Proto: fixture.ProtoTCP})
	if err := prog.SetServices(svcs); err != nil {
		t.Fatal(err)
	}
	if run(t, prog, syn.Frame) != xdpPass {
		t.Fatal("removed service still steered")
	}
	if run(t, prog, fixture.Cases()[2].Frame) != xdpRedirect {
		t.Fatal("kept service no longer steered")
	}
}

func TestNoSocketPasses(t *testing.T) {
	testenv.RequireRoot(t)
	prog, err := bpf.Load()
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	svcs, _ := fixtureServices()
	prog.SetServices(svcs)
	if run(t, prog, fixture.Cases()[0].Frame) != xdpPass {
		t.Fatal("service packet without a socket must be passed")
	}
	st, _ := prog.VerdictStats()
	if st["no_socket"].Packets != 1 {
		t.Fatalf("no_socket not counted: %v", st)
	}
}

// TestSteerUsesInterfaceSlot: a socket registered for another interface's
// slot must not receive this interface's packets.
func TestSteerUsesInterfaceSlot(t *testing.T) {
	prog := loadWithSocket(t)
	svcs, _ := fixtureServices()
	prog.SetServices(svcs)
	// Test runs see the loopback device (ifindex 1) as the ingress interface.
	if err := prog.SetInterfaceSlot(1, 1); err != nil {
		t.Fatal(err)
	}
	if run(t, prog, fixture.Cases()[0].Frame) != xdpPass {
		t.Fatal("packet from slot 1 steered to slot 0's socket")
	}
	if err := prog.SetInterfaceSlot(1, 0); err != nil {
		t.Fatal(err)
	}
	if run(t, prog, fixture.Cases()[0].Frame) != xdpRedirect {
		t.Fatal("packet from slot 0 not steered")
	}
}
