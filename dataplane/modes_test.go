package dataplane

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

var (
	snatAddr = netip.MustParseAddr("10.0.2.100")
	lbDown   = netip.MustParseAddr("10.0.2.1")
	backend1 = [6]byte(fixture.BackendMAC1)
)

// modeWorker is a two-arm worker whose MySQL service (VIP:3307, one backend:
// backend1:3306) has the given mode; DSR modes serve it on 3307 itself.
func modeWorker(t *testing.T, mode fwdmode.Mode, mut func(*Config)) (*Engine, *Worker, *memQueue, *memQueue) {
	t.Helper()
	return modeWorkerOn(t, 2, mode, mut)
}

// modeWorkerOn is modeWorker for fixtureConfig's service i (2: the IPv4
// MySQL service, 5: the IPv6 one), with SNAT addresses of both families.
func modeWorkerOn(t *testing.T, i int, mode fwdmode.Mode, mut func(*Config)) (*Engine, *Worker, *memQueue, *memQueue) {
	t.Helper()
	e, w, up, down := newTestWorker(t, false)
	e.UseSNAT([]netip.Addr{snatAddr, snatAddr6}, 40000, 40255)
	c := fixtureConfig()
	c.BackendAddr, c.BackendAddr6 = lbDown, lbDown6
	c.Services[i].Mode = mode
	if mode.DSR() {
		c.Services[i].Backends[0].Port = fixture.MySQLVPort
	}
	if mut != nil {
		mut(&c)
	}
	if err := e.Reconfig(c); err != nil {
		t.Fatal(err)
	}
	return e, w, up, down
}

func mysqlSyn(port uint16) fixture.Frame {
	return fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoTCP, SrcPort: port, DstPort: fixture.MySQLVPort, TCPFlags: fixture.FlagSYN}
}

func one(t *testing.T, q *memQueue) []byte {
	t.Helper()
	out := q.takeTx()
	if len(out) != 1 {
		t.Fatalf("%d frames sent, want 1", len(out))
	}
	return out[0]
}

func TestFullNAT(t *testing.T) {
	e, w, up, down := modeWorker(t, fwdmode.FullNAT, nil)
	up.inject(mysqlSyn(5000).Bytes())
	w.pump(up)
	var p packet.Packet
	if packet.Decode(one(t, down), &p) != packet.OK || p.Src != packet.AddrFrom(snatAddr) || p.SrcPort < 40000 ||
		p.SrcPort > 40255 || p.Dst != packet.AddrFrom(fixture.Backend1) || p.DstPort != fixture.MySQLPort {
		t.Fatalf("forwarded %v", p.Tuple())
	}
	sport := p.SrcPort
	// The backend answers the SNAT address; the client gets it from the VIP.
	reply := fixture.Frame{SrcMAC: backend1, DstMAC: fixture.LBDownMAC, Src: fixture.Backend1, Dst: snatAddr,
		Proto: fixture.ProtoTCP, SrcPort: fixture.MySQLPort, DstPort: sport, TCPFlags: fixture.FlagSYN | fixture.FlagACK}
	down.inject(reply.Bytes())
	w.pump(down)
	want := reply
	want.Src, want.SrcPort, want.Dst, want.DstPort, want.TTL = fixture.VIP, fixture.MySQLVPort, fixture.Client, 5000, 63
	want.SrcMAC, want.DstMAC = fixture.LBUpMAC, fixture.ClientMAC
	if len(up.tx) != 1 {
		t.Fatalf("reply not sent: %v", e.Stats().Drops)
	}
	if got := one(t, up); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("reply\n%x\nwant\n%x", got, want.Bytes())
	}
	// 256 ports, 4 in each conntrack shard: 600 more flows (about 9 per
	// shard) use up the whole range; the rest are refused and counted, each
	// port is used once, and the live flow keeps its port.
	ports := map[uint16]bool{sport: true}
	for port := uint16(10000); port < 10600; port++ {
		up.inject(mysqlSyn(port).Bytes())
		w.pump(up)
		for _, f := range down.takeTx() {
			packet.Decode(f, &p)
			if ports[p.SrcPort] {
				t.Fatalf("port %d handed out twice", p.SrcPort)
			}
			ports[p.SrcPort] = true
		}
	}
	exhausted := e.Stats().Drops["snat_exhausted"]
	if len(ports) != 256 || int(exhausted) != 600-(len(ports)-1) {
		t.Fatalf("%d ports used, %d refused", len(ports), exhausted)
	}
	up.inject(mysqlSyn(5000).Bytes())
	w.pump(up)
	if packet.Decode(one(t, down), &p); p.SrcPort != sport {
		t.Fatalf("a live flow's port changed: %d -> %d", sport, p.SrcPort)
	}
	// Expiry frees the ports.
	e.Conntrack().Expire(time.Now().Add(time.Hour).UnixNano())
	if n := e.SNATPortsInUse(); n != 0 {
		t.Fatalf("%d ports still held after expiry", n)
	}
	up.inject(mysqlSyn(10000).Bytes())
	w.pump(up)
	one(t, down)
}

// A 64-port range has a port in every conntrack shard: a client's first
// flow is never refused while the range is free (it once was for about a
// third of the clients, whose every retransmitted SYN met snat_exhausted).
func TestFullNATSmallRangeServesEveryClient(t *testing.T) {
	for i := range 40 {
		e, w, up, down := modeWorker(t, fwdmode.FullNAT, nil)
		e.UseSNAT([]netip.Addr{snatAddr}, 40000, 40063)
		up.inject(mysqlSyn(uint16(20000 + i)).Bytes())
		w.pump(up)
		if len(down.takeTx()) != 1 {
			t.Fatalf("client %d refused with 64 free ports: %v", i, e.Stats().Drops)
		}
	}
}

func TestDSRL2(t *testing.T) {
	e, w, up, down := modeWorker(t, fwdmode.DSRL2, nil)
	syn := mysqlSyn(6000)
	up.inject(syn.Bytes())
	w.pump(up)
	want := syn
	want.SrcMAC, want.DstMAC, want.TTL = fixture.LBDownMAC, fixture.BackendMAC1, 63
	if got := one(t, down); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("forwarded\n%x\nwant\n%x", got, want.Bytes())
	}
	ack := syn
	ack.TCPFlags = fixture.FlagACK
	up.inject(ack.Bytes())
	w.pump(up)
	one(t, down)
	if f := e.Conntrack().Entries(0); len(f) != 1 || f[0].State.String() != "established" || !f[0].OneWay {
		t.Fatalf("flow %+v", f)
	}
}

func TestDSRIPIP(t *testing.T) {
	_, w, up, down := modeWorker(t, fwdmode.DSRIPIP, nil)
	syn := mysqlSyn(7000)
	up.inject(syn.Bytes())
	w.pump(up)
	inner := syn
	inner.TTL = 63
	h := syn.Bytes()
	var p packet.Packet
	packet.Decode(h, &p)
	tup := p.Tuple()
	hash := tup.Hash(flowHashSeed)
	zero := uint16(0)
	want := fixture.Frame{SrcMAC: fixture.LBDownMAC, DstMAC: fixture.BackendMAC1,
		Src: netip.AddrFrom4([4]byte{172, 16, byte(hash >> 8), byte(hash)}), Dst: fixture.Backend1,
		Proto: 4, ID: &zero, Payload: inner.Bytes()[14:]}
	if got := one(t, down); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("encapsulated\n%x\nwant\n%x", got, want.Bytes())
	}
}

// Packets larger than the next link are answered with fragmentation-needed
// (DF) or dropped (no DF); IPIP leaves 20 bytes less room.
func TestTooBig(t *testing.T) {
	big := func(df bool, port uint16) fixture.Frame {
		f := mysqlSyn(port)
		f.TCPFlags, f.Payload = fixture.FlagACK, make([]byte, 1400) // a 1440-byte datagram
		if df {
			f.FragOff = 0x4000
		}
		return f
	}
	for _, c := range []struct {
		mode    fwdmode.Mode
		mtu     int
		nextHop uint32
	}{{fwdmode.NAT, 1400, 1400}, {fwdmode.FullNAT, 1400, 1400}, {fwdmode.DSRIPIP, 1450, 1430}} {
		e, w, up, down := modeWorker(t, c.mode, func(cfg *Config) { cfg.BackendMTU = c.mtu })
		up.inject(big(true, 8000).Bytes())
		up.inject(big(false, 8001).Bytes())
		w.pump(up)
		if n := len(down.takeTx()); n != 0 {
			t.Fatalf("%v: %d oversized packets forwarded", c.mode, n)
		}
		var p packet.Packet
		icmp := one(t, up)
		if packet.Decode(icmp, &p) != packet.OK || p.ICMP.Type != 3 || p.ICMP.Code != 4 || p.Src != packet.AddrFrom(fixture.VIP) ||
			p.Dst != packet.AddrFrom(fixture.Client) || p.ICMP.Inner.SrcPort != 8000 || fixture.VerifyChecksums(icmp) != nil {
			t.Fatalf("%v: answer %+v %+v", c.mode, p.Tuple(), p.ICMP)
		}
		if mtu := uint32(icmp[14+20+6])<<8 | uint32(icmp[14+20+7]); mtu != c.nextHop {
			t.Fatalf("%v: next-hop MTU %d, want %d", c.mode, mtu, c.nextHop)
		}
		if st := e.Stats(); st.FragNeededSent != 1 || st.Drops["too_big"] != 1 {
			t.Fatalf("%v: stats %+v", c.mode, st)
		}
	}
	// A backend's reply too big for the upstream link: the error goes back
	// to the backend, from the load balancer's backend-side address.
	e, w, up, down := modeWorker(t, fwdmode.NAT, func(cfg *Config) { cfg.UpstreamMTU = 1400 })
	up.inject(mysqlSyn(9000).Bytes())
	w.pump(up)
	one(t, down)
	reply := fixture.Frame{SrcMAC: backend1, DstMAC: fixture.LBDownMAC, Src: fixture.Backend1, Dst: fixture.Client,
		Proto: fixture.ProtoTCP, SrcPort: fixture.MySQLPort, DstPort: 9000, TCPFlags: fixture.FlagACK, FragOff: 0x4000,
		Payload: make([]byte, 1400)}
	down.inject(reply.Bytes())
	w.pump(down)
	var p packet.Packet
	if packet.Decode(one(t, down), &p) != packet.OK || p.Src != packet.AddrFrom(lbDown) || p.Dst != packet.AddrFrom(fixture.Backend1) {
		t.Fatalf("error to the backend: %v", p.Tuple())
	}
	if e.Stats().FragNeededSent != 1 {
		t.Fatal("not counted")
	}
}

func TestMSSClampToLinks(t *testing.T) {
	mss := func(frame []byte) uint16 {
		var p packet.Packet
		packet.Decode(frame, &p)
		o := frame[p.L4+20:]
		return uint16(o[2])<<8 | uint16(o[3])
	}
	syn := mysqlSyn(1)
	syn.TCPOptions = []byte{2, 4, 0x05, 0xb4} // 1460
	for _, c := range []struct {
		mode  fwdmode.Mode
		mtu   int
		clamp uint16
		want  uint16
	}{
		{fwdmode.NAT, 1500, 0, 1460},
		{fwdmode.NAT, 1400, 0, 1360},        // the backend's segments arrive over the 1400 link
		{fwdmode.FullNAT, 1500, 1200, 1200}, // the operator's clamp
		{fwdmode.DSRL2, 1400, 0, 1460},      // the backend's segments do not come back this way
		{fwdmode.DSRIPIP, 1500, 1300, 1300},
	} {
		_, w, up, down := modeWorker(t, c.mode, func(cfg *Config) { cfg.BackendMTU, cfg.MSSClamp = c.mtu, c.clamp })
		up.inject(syn.Bytes())
		w.pump(up)
		out := one(t, down)
		if c.mode == fwdmode.DSRIPIP {
			out = append(out[:14:14], out[34:]...)
		}
		if got := mss(out); got != c.want || fixture.VerifyChecksums(out) != nil {
			t.Errorf("%v mtu %d clamp %d: MSS %d, want %d (%v)", c.mode, c.mtu, c.clamp, got, c.want, fixture.VerifyChecksums(out))
		}
	}
}

func TestEchoToVIP(t *testing.T) {
	e, w, up, _ := newTestWorker(t, false)
	req := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoICMP, Payload: []byte("ping")}
	up.inject(req.Bytes())
	w.pump(up)
	want := fixture.Frame{SrcMAC: fixture.LBUpMAC, DstMAC: fixture.ClientMAC, Src: fixture.VIP, Dst: fixture.Client,
		Proto: fixture.ProtoICMP, ICMP: &fixture.ICMPHeader{Type: 0}, Payload: []byte("ping")}
	if got := one(t, up); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("echo reply\n%x\nwant\n%x", got, want.Bytes())
	}
	if e.Stats().EchoReplies != 1 {
		t.Fatal("not counted")
	}
}

// New full-NAT flows and ICMP answers do not allocate either.
func TestModesAllocs(t *testing.T) {
	e, w, up, down := modeWorker(t, fwdmode.FullNAT, func(c *Config) { c.BackendMTU = 1400 })
	e.UseSNAT([]netip.Addr{snatAddr}, 1024, 65535)
	syn := mysqlSyn(0).Bytes()
	big := mysqlSyn(1)
	big.Payload, big.FragOff = make([]byte, 1400), 0x4000
	echo := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoICMP}.Bytes()
	frames := [][]byte{syn, big.Bytes(), echo}
	var port uint16
	allocs := testing.AllocsPerRun(1000, func() {
		port++
		syn[34], syn[35] = byte(port>>8), byte(port)
		for _, f := range frames {
			up.inject(f)
		}
		w.pump(up)
		for _, q := range []*memQueue{up, down} {
			q.complete()
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch", allocs)
	}
	if st := e.Stats(); st.NewFlows < 1000 || st.FragNeededSent < 1000 || st.EchoReplies < 1000 {
		t.Fatalf("the measured paths did not run: %+v", st)
	}
}
