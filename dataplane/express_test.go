package dataplane

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

// twin is one worker set-up twice, over tables that hash alike: full takes
// the full path only, fast the express path where it can.
type twin struct {
	full, fast twinSide
}

type twinSide struct {
	e        *Engine
	w        *Worker
	up, down *memQueue
}

func newTwin(t *testing.T, oneArm bool, cfg Config) *twin {
	t.Helper()
	return newTwinFilled(t, oneArm, cfg, 0)
}

// newTwinFilled is newTwin over tables that hold filler flows besides (UDP
// flows no traffic of the tests names), so many that the tables are Large;
// the express side's worker then has records (xrecord.go).
func newTwinFilled(t *testing.T, oneArm bool, cfg Config, filler int) *twin {
	t.Helper()
	ct := conntrack.New(4096+2*filler, conntrack.DefaultTimeouts)
	fillFlows(t, ct, filler)
	var seed bytes.Buffer
	if _, err := ct.WriteSnapshot(&seed); err != nil {
		t.Fatal(err)
	}
	side := func(ct *conntrack.Table) twinSide {
		e := NewEngine(ct, zap.NewNop())
		if err := e.SetWorkerFlows(2 * filler); err != nil {
			t.Fatal(err)
		}
		// An IPv6 SNAT address whose first bytes differ from the clients':
		// every word of an address is rewritten somewhere.
		e.UseSNAT([]netip.Addr{snatAddr, netip.MustParseAddr("fd00:5::100")}, 40000, 40255)
		if err := e.Reconfig(cfg); err != nil {
			t.Fatal(err)
		}
		w, up, down := newWorkerOn(e, oneArm)
		return twinSide{e: e, w: w, up: up, down: down}
	}
	tw := &twin{full: side(ct)}
	ct2 := conntrack.New(4096+2*filler, conntrack.DefaultTimeouts)
	if _, _, err := ct2.Restore(&seed, time.Now().UnixNano(), nil); err != nil {
		t.Fatal(err)
	}
	tw.fast = side(ct2)
	tw.full.w.xoff = true
	return tw
}

// fillFlows adds n UDP flows to ct that no traffic of the tests names.
func fillFlows(t *testing.T, ct *conntrack.Table, n int) {
	t.Helper()
	now := time.Now().UnixNano()
	for i := range n {
		src := packet.AddrFrom(netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}))
		fwd := packet.Tuple{Src: src, Dst: packet.AddrFrom(netip.MustParseAddr("10.201.0.1")), SrcPort: 5000,
			DstPort: 9, Proto: packet.ProtoUDP}
		rev := packet.Tuple{Src: packet.AddrFrom(netip.MustParseAddr("10.202.0.1")), Dst: src, SrcPort: 9,
			DstPort: 5000, Proto: packet.ProtoUDP}
		if !ct.Insert(fwd, rev, conntrack.NewFlow{Backend: 99}, &packet.Segment{}, 60, now) {
			t.Fatalf("filler flow %d refused", i)
		}
	}
}

// send gives both the same frames on one side and checks that they send
// the same frames the same ways; it returns what went to the backends and
// to the clients.
func (tw *twin) send(t *testing.T, backendSide bool, frames ...[]byte) (toBackends, toClients [][]byte) {
	t.Helper()
	var outs [2][2][][]byte
	for i, s := range []*twinSide{&tw.full, &tw.fast} {
		in := s.up
		if backendSide {
			in = s.down
		}
		for _, f := range frames {
			in.inject(f)
		}
		s.w.pump(in)
		outs[i][0] = s.down.takeTx()
		if s.up != s.down {
			outs[i][1] = s.up.takeTx()
		}
	}
	for k, way := range []string{"to backends", "to clients"} {
		a, b := outs[0][k], outs[1][k]
		if len(a) != len(b) {
			t.Fatalf("%s: full path sent %d frames, express %d", way, len(a), len(b))
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("%s, frame %d:\nfull    %x\nexpress %x", way, i, a[i], b[i])
			}
		}
	}
	return outs[0][0], outs[0][1]
}

// check compares what both ended with: counters, flows (after the caches'
// deferred counts are flushed) and backend counters.
func (tw *twin) check(t *testing.T) {
	t.Helper()
	now := time.Now().UnixNano()
	tw.full.w.flushDeferred(now)
	tw.fast.w.flushDeferred(now)
	a, b := tw.full.e.Stats(), tw.fast.e.Stats()
	if a.Express != 0 {
		t.Fatalf("the full path took the express path %d times", a.Express)
	}
	b.Express = 0
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("counters differ:\nfull    %+v\nexpress %+v", a, b)
	}
	flows := func(e *Engine) []string {
		var out []string
		for _, en := range e.Conntrack().Entries(0) {
			out = append(out, fmt.Sprint(en.Fwd, en.Rev, en.Backend, en.Packets, en.Bytes, en.State, en.ClientMAC))
		}
		slices.Sort(out)
		return out
	}
	if fa, fb := flows(tw.full.e), flows(tw.fast.e); !slices.Equal(fa, fb) {
		t.Fatalf("flows differ:\nfull    %v\nexpress %v", fa, fb)
	}
	for id := uint32(1); id <= 10; id++ {
		pa, ba, na := tw.full.e.BackendCounters(id)
		pb, bb, nb := tw.fast.e.BackendCounters(id)
		if pa != pb || ba != bb || na != nb {
			t.Fatalf("backend %d: full %d/%d/%d, express %d/%d/%d", id, pa, ba, na, pb, bb, nb)
		}
	}
}

// flowGen makes the traffic of a few flows of the IPv4 TCP and UDP
// services, both ways, with the odd frame the express path must leave to
// the full path.
type flowGen struct {
	rng     *rand.Rand
	flows   []genFlow
	backend map[int][]byte // flow -> the last frame it sent to a backend
}

type genFlow struct {
	port    uint16
	udp, v6 bool
	started bool
	synAck  bool // the backend answered the SYN
	seq     uint32
}

// client is a frame of flow i from its client: mostly a data segment or
// datagram, sometimes one with a flag, a low TTL, options or a mutation.
func (g *flowGen) client(i int) []byte {
	fl := &g.flows[i]
	f := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoTCP, SrcPort: fl.port, DstPort: fixture.HTTPPort, TCPFlags: fixture.FlagACK, Seq: fl.seq}
	if fl.v6 {
		f.Src, f.Dst = fixture.Client6, fixture.VIP6
	}
	if fl.udp {
		f.Proto, f.DstPort, f.TCPFlags = fixture.ProtoUDP, fixture.UDPPort, 0
	} else if !fl.started {
		f.TCPFlags = fixture.FlagSYN
	}
	fl.started = true
	f.Payload = make([]byte, g.rng.IntN(200))
	fl.seq += uint32(len(f.Payload))
	return g.odd(f, fl)
}

// fromBackend is a backend's answer to what flow i last sent it.
func (g *flowGen) fromBackend(i int) []byte {
	out := g.backend[i]
	if out == nil {
		return nil
	}
	fl := &g.flows[i]
	var p packet.Packet
	if packet.Decode(out, &p) != packet.OK || p.Proto.IsICMP() {
		return nil // an ICMP error the load balancer sent, an encapsulated frame
	}
	f := fixture.Frame{SrcMAC: [6]byte(out[0:6]), DstMAC: fixture.LBDownMAC, Src: p.Dst.IP(), Dst: p.Src.IP(),
		Proto: fixture.ProtoTCP, SrcPort: p.DstPort, DstPort: p.SrcPort, TCPFlags: fixture.FlagACK, Seq: 7000 + fl.seq}
	if fl.udp {
		f.Proto, f.TCPFlags = fixture.ProtoUDP, 0
	} else if !fl.synAck {
		f.TCPFlags = fixture.FlagSYN | fixture.FlagACK
		fl.synAck = true
	}
	f.Payload = make([]byte, g.rng.IntN(1500))
	return g.odd(f, fl)
}

// odd makes about one frame in eight one the express path must not take
// as it is, or must take and get right. A FIN or RST ends flow fl: its
// client starts another (a new port) next.
func (g *flowGen) odd(f fixture.Frame, fl *genFlow) []byte {
	switch g.rng.IntN(100) {
	case 0:
		f.TCPFlags |= fixture.FlagFIN
		fl.started, fl.synAck, fl.port = false, false, fl.port+1000
	case 1:
		f.TCPFlags = fixture.FlagRST | fixture.FlagACK
		fl.started, fl.synAck, fl.port = false, false, fl.port+1000
	case 2:
		f.TTL = 1
	case 3:
		f.TTL = 2
	case 4:
		f.IPOptions = []byte{1, 1, 1, 0}
		if f.Src.Is6() {
			f.Ext6 = []fixture.Ext6{fixture.Pad6(fixture.ExtDestOpts)}
		}
	case 5:
		f.NoUDPChecksum = true
	case 6:
		f.SrcMAC[5]++ // another next hop
	case 7:
		f.FragOff = 0x2000
		if f.Src.Is6() {
			f.Ext6 = []fixture.Ext6{fixture.Fragment6(0, true)}
		}
	case 8:
		b := f.Bytes()
		return append(b, make([]byte, 1+g.rng.IntN(30))...) // Ethernet padding
	case 9, 10:
		b := f.Bytes()
		b[g.rng.IntN(min(len(b), 70))] ^= byte(1 + g.rng.IntN(255)) // any header byte
		return b
	case 11:
		b := f.Bytes()
		return b[:g.rng.IntN(len(b))]
	case 12:
		f.Payload = make([]byte, 1400) // past the backend link's MTU
	}
	return f.Bytes()
}

// The express path sends the same bytes the same ways as the full path,
// and leaves the same counters and flows, over random traffic of many
// flows, IPv4 and IPv6, both directions, each forwarding mode, one-arm and
// two-arm, with configuration changes on the way. Nothing is decided by
// timing.
func TestExpressMatchesFullPath(t *testing.T) {
	for _, mode := range []fwdmode.Mode{fwdmode.NAT, fwdmode.FullNAT, fwdmode.DSRL2, fwdmode.DSRIPIP} {
		for _, oneArm := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/oneArm=%v", mode, oneArm), func(t *testing.T) {
				expressMatches(t, mode, oneArm, 0)
			})
		}
	}
}

// The same with Large tables: the express side's IPv4 flows take its
// records (xrecord.go), whose counts are deferred as the cache's are,
// against a full path whose cache is bypassed (every packet counted in the
// table at once).
func TestExpressRecordsMatchFullPath(t *testing.T) {
	for _, mode := range []fwdmode.Mode{fwdmode.NAT, fwdmode.FullNAT, fwdmode.DSRL2, fwdmode.DSRIPIP} {
		for _, oneArm := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/oneArm=%v", mode, oneArm), func(t *testing.T) {
				expressMatches(t, mode, oneArm, conntrack.LargeFlows)
			})
		}
	}
}

func expressMatches(t *testing.T, mode fwdmode.Mode, oneArm bool, filler int) {
	cfg := fixtureConfig()
	cfg.BackendAddr, cfg.BackendAddr6 = lbDown, lbDown6
	cfg.BackendMTU = 1400
	udpMode := fwdmode.FullNAT
	if mode == fwdmode.FullNAT {
		udpMode = fwdmode.NAT
	}
	for _, i := range []int{0, 3} { // the TCP services, IPv4 and IPv6, and their UDP ones
		cfg.Services[i].Mode, cfg.Services[i+1].Mode = mode, udpMode
		if i == 3 && mode == fwdmode.DSRIPIP {
			cfg.Services[i].Mode = fwdmode.NAT // IPv4 only
		}
		if mode.DSR() {
			for j := range cfg.Services[i].Backends {
				cfg.Services[i].Backends[j].Port = fixture.HTTPPort
			}
		}
	}
	tw := newTwinFilled(t, oneArm, cfg, filler)
	large := filler >= conntrack.LargeFlows
	g := &flowGen{rng: rand.New(rand.NewPCG(uint64(mode), 7)), backend: map[int][]byte{}}
	for i := range 24 {
		g.flows = append(g.flows, genFlow{port: 30000 + uint16(i), udp: i%3 == 0, v6: i%2 == 1, seq: 1000})
	}
	express6 := uint64(0) // packets of IPv6 flows the express path took
	// send gives both flow i's frames and counts those the express path took.
	send := func(i int, backendSide bool, frames ...[]byte) (toBackends [][]byte) {
		before := tw.fast.e.Stats().Express
		toBackends, _ = tw.send(t, backendSide, frames...)
		if g.flows[i].v6 {
			express6 += tw.fast.e.Stats().Express - before
		}
		return toBackends
	}
	for step := range 6000 {
		switch r := g.rng.IntN(1000); {
		case r == 0: // a backend drained and back, a MAC changed: a new configuration
			c := cfg
			c.Services = slices.Clone(cfg.Services)
			c.Services[0].Backends = slices.Clone(cfg.Services[0].Backends)
			c.Services[0].Backends[1].MAC[5] += byte(step)
			c.Services[3].Backends = slices.Clone(cfg.Services[3].Backends)
			c.Services[3].Backends[0].Weight = uint32(step % 2) // drained or not
			for _, s := range []*twinSide{&tw.full, &tw.fast} {
				if err := s.e.Reconfig(c); err != nil {
					t.Fatal(err)
				}
			}
		case r < 550 || mode.DSR() && !oneArm && r < 900:
			i := g.rng.IntN(len(g.flows))
			frames := [][]byte{g.client(i)}
			if g.rng.IntN(4) == 0 { // a batch: the same flow's next packet too
				frames = append(frames, g.client(i))
			}
			if out := send(i, false, frames...); len(out) > 0 {
				g.backend[i] = out[len(out)-1]
			}
		default:
			i := g.rng.IntN(len(g.flows))
			if f := g.fromBackend(i); f != nil {
				send(i, true, f)
			}
		}
	}
	tw.check(t)
	st := tw.fast.e.Stats()
	// dsr-ipip flows (the TCP service there) are never express.
	want := (st.Forwarded + st.Replied) / 2
	if mode == fwdmode.DSRIPIP {
		want /= 3
	}
	if large { // the records take IPv4 only: half the flows
		if !tw.fast.w.xlarge || express6 != 0 {
			t.Fatalf("records on: %v; %d IPv6 packets taken by the express path", tw.fast.w.xlarge, express6)
		}
		want /= 2
	}
	if st.Express < want || !large && express6 < st.Express/4 {
		t.Fatalf("the express path took %d of %d packets sent on, %d of them IPv6: this traffic does not test it",
			st.Express, st.Forwarded+st.Replied, express6)
	}
	t.Logf("express: %d of %d forwarded or replied, %d of them IPv6", st.Express, st.Forwarded+st.Replied, express6)
}

// A UDP checksum the rewrite makes 0 is sent as 0xffff (0 means none), by
// the express path as by the full path: found by trying payloads until the
// full path sends one.
func TestExpressUDPChecksumZero(t *testing.T) {
	cfg := fixtureConfig()
	tw := newTwin(t, false, cfg)
	f := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoUDP, SrcPort: 40001, DstPort: fixture.UDPPort, Payload: []byte{0, 0}}
	for range 3 { // the flow, then its admission to the cache and the express table
		tw.send(t, false, f.Bytes())
	}
	for w := range 1 << 16 {
		f.Payload[0], f.Payload[1] = byte(w>>8), byte(w)
		before := tw.fast.e.Stats().Express
		out, _ := tw.send(t, false, f.Bytes())
		if len(out) != 1 || out[0][len(out[0])-4] != 0xff || out[0][len(out[0])-3] != 0xff {
			continue // the checksum is at 34+6 of 44 bytes: 4 from the end
		}
		if tw.fast.e.Stats().Express != before+1 {
			t.Fatal("the express path did not take the packet")
		}
		return
	}
	t.Fatal("no payload made the checksum 0xffff")
}

// An express slot is one cache line, and the table's first slot starts one
// (a large allocation is page-aligned), so a lookup that hits its first
// way reads one line.
func TestExpressSlotIsOneLine(t *testing.T) {
	if n := unsafe.Sizeof(xslot{}); n != 64 {
		t.Fatalf("an express slot is %d bytes", n)
	}
	_, w, _, _ := newTestWorker(t, false)
	if a := uintptr(unsafe.Pointer(&w.xslots[0])); a%64 != 0 {
		t.Fatalf("the express table starts at %#x", a)
	}
}

// What the express path parses and what it leaves to the full path.
func TestXparse(t *testing.T) {
	ack := fixture.Frame{Src: fixture.Client, Dst: fixture.VIP, Proto: fixture.ProtoTCP, SrcPort: 40000,
		DstPort: fixture.HTTPPort, TCPFlags: fixture.FlagACK, Payload: []byte("data")}
	udp := fixture.Frame{Src: fixture.Client, Dst: fixture.VIP, Proto: fixture.ProtoUDP, SrcPort: 40001,
		DstPort: fixture.UDPPort, Payload: []byte("ping")}
	with := func(f fixture.Frame, mut func(*fixture.Frame)) []byte { mut(&f); return f.Bytes() }
	for _, c := range []struct {
		name  string
		frame []byte
		v4    bool // xparse takes it
		v6    bool // xparse6 takes it
		ipLen int
		seg   uint32 // TCP payload length
	}{
		{"tcp ack", ack.Bytes(), true, false, 44, 4},
		{"udp", udp.Bytes(), true, false, 32, 0},
		{"udp, no checksum", with(udp, func(f *fixture.Frame) { f.NoUDPChecksum = true }), true, false, 32, 0},
		{"padding", append(ack.Bytes(), 0, 0, 0), true, false, 44, 4},
		{"tcp options", with(ack, func(f *fixture.Frame) { f.TCPOptions = []byte{1, 1, 1, 1} }), true, false, 48, 4},
		{"syn", with(ack, func(f *fixture.Frame) { f.TCPFlags = fixture.FlagSYN }), false, false, 0, 0},
		{"fin", with(ack, func(f *fixture.Frame) { f.TCPFlags |= fixture.FlagFIN }), false, false, 0, 0},
		{"rst", with(ack, func(f *fixture.Frame) { f.TCPFlags = fixture.FlagRST }), false, false, 0, 0},
		{"ttl 1", with(ack, func(f *fixture.Frame) { f.TTL = 1 }), false, false, 0, 0},
		{"ip options", with(ack, func(f *fixture.Frame) { f.IPOptions = []byte{1, 1, 1, 0} }), false, false, 0, 0},
		{"fragment", with(udp, func(f *fixture.Frame) { f.FragOff = 0x2000 }), false, false, 0, 0},
		{"icmp", with(udp, func(f *fixture.Frame) { f.Proto = fixture.ProtoICMP }), false, false, 0, 0},
		{"truncated", ack.Bytes()[:50], false, false, 0, 0},
		{"ipv6 tcp", with(ack, func(f *fixture.Frame) { f.Src, f.Dst = fixture.Client6, fixture.VIP6 }), false, true, 64, 4},
		{"ipv6 udp", with(udp, func(f *fixture.Frame) { f.Src, f.Dst = fixture.Client6, fixture.VIP6 }), false, true, 52, 0},
		{"ipv6 hop limit 1", with(ack, func(f *fixture.Frame) { f.Src, f.Dst, f.TTL = fixture.Client6, fixture.VIP6, 1 }),
			false, false, 0, 0},
		{"ipv6 extension header", with(ack, func(f *fixture.Frame) {
			f.Src, f.Dst, f.Ext6 = fixture.Client6, fixture.VIP6, []fixture.Ext6{fixture.Pad6(fixture.ExtDestOpts)}
		}), false, false, 0, 0},
		{"ipv6 syn", with(ack, func(f *fixture.Frame) { f.Src, f.Dst, f.TCPFlags = fixture.Client6, fixture.VIP6, fixture.FlagSYN }),
			false, false, 0, 0},
	} {
		var x xframe
		if got := xparse(c.frame, false, &x); got != c.v4 {
			t.Errorf("%s: xparse %v", c.name, got)
		}
		if got := xparse6(c.frame, false, &x); got != c.v6 {
			t.Errorf("%s: xparse6 %v", c.name, got)
		}
		if c.v4 || c.v6 {
			if !c.v4 {
				xparse6(c.frame, false, &x)
			} else {
				xparse(c.frame, false, &x)
			}
			if x.ipLen != c.ipLen || x.seg.Len != c.seg || x.v6 != c.v6 {
				t.Errorf("%s: ipLen %d, payload %d, v6 %v", c.name, x.ipLen, x.seg.Len, x.v6)
			}
		}
	}
}
