package dataplane

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

func fixtureConfig() Config {
	b := func(id uint32, a netip.Addr, port uint16, mac [6]byte) Backend {
		return Backend{ID: id, Addr: a, Port: port, Weight: 1, MAC: mac}
	}
	return Config{
		UpstreamMAC: fixture.LBUpMAC, BackendMAC: fixture.LBDownMAC,
		Services: []Service{
			{ID: 1, VIP: fixture.VIP, Port: fixture.HTTPPort, Proto: packet.ProtoTCP, Backends: []Backend{
				b(1, fixture.Backend1, 80, fixture.BackendMAC1), b(2, fixture.Backend2, 80, fixture.BackendMAC2)}},
			{ID: 2, VIP: fixture.VIP, Port: fixture.UDPPort, Proto: packet.ProtoUDP, Backends: []Backend{
				b(3, fixture.Backend1, 9090, fixture.BackendMAC1), b(4, fixture.Backend2, 9090, fixture.BackendMAC2)}},
			{ID: 3, VIP: fixture.VIP, Port: fixture.MySQLVPort, Proto: packet.ProtoTCP, Backends: []Backend{
				b(5, fixture.Backend1, fixture.MySQLPort, fixture.BackendMAC1)}},
			{ID: 4, VIP: fixture.VIP6, Port: fixture.HTTPPort, Proto: packet.ProtoTCP, Backends: []Backend{
				b(6, fixture.Backend61, 80, fixture.BackendMAC1), b(7, fixture.Backend62, 80, fixture.BackendMAC2)}},
			{ID: 5, VIP: fixture.VIP6, Port: fixture.UDPPort, Proto: packet.ProtoUDP, Backends: []Backend{
				b(8, fixture.Backend61, 9090, fixture.BackendMAC1), b(9, fixture.Backend62, 9090, fixture.BackendMAC2)}},
			{ID: 6, VIP: fixture.VIP6, Port: fixture.MySQLVPort, Proto: packet.ProtoTCP, Backends: []Backend{
				b(10, fixture.Backend61, fixture.MySQLPort, fixture.BackendMAC1)}},
		},
	}
}

func newTestWorker(t testing.TB, oneArm bool) (*Engine, *Worker, *memQueue, *memQueue) {
	e := NewEngine(conntrack.New(4096, conntrack.DefaultTimeouts), zap.NewNop())
	if err := e.Reconfig(fixtureConfig()); err != nil {
		t.Fatal(err)
	}
	w, up, down := newWorkerOn(e, oneArm)
	return e, w, up, down
}

// newWorkerOn is worker 0 of e over in-memory queues: one for both sides
// (one-arm), or two over one pool, as a worker's sockets share a UMEM.
func newWorkerOn(e *Engine, oneArm bool) (*Worker, *memQueue, *memQueue) {
	pool := newMemPool(512)
	up := newMemQueueOn(pool)
	down := up
	if !oneArm {
		down = newMemQueueOn(pool)
	}
	return e.NewWorker(0, up, down, -1), up, down
}

func TestForwardAndReply(t *testing.T) {
	for _, oneArm := range []bool{false, true} {
		_, w, up, down := newTestWorker(t, oneArm)
		syn := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
			Proto: fixture.ProtoTCP, SrcPort: 40000, DstPort: fixture.MySQLVPort, TCPFlags: fixture.FlagSYN}
		up.inject(syn.Bytes())
		w.pump(up)
		out := down.takeTx()
		if len(out) != 1 {
			t.Fatalf("oneArm=%v: %d frames sent to backends", oneArm, len(out))
		}
		want := syn
		want.Dst, want.DstPort, want.TTL = fixture.Backend1, fixture.MySQLPort, 63
		want.SrcMAC, want.DstMAC = fixture.LBDownMAC, fixture.BackendMAC1
		if !bytes.Equal(out[0], want.Bytes()) {
			t.Fatalf("forwarded\n%x\nwant\n%x", out[0], want.Bytes())
		}

		reply := fixture.Frame{SrcMAC: fixture.BackendMAC1, DstMAC: fixture.LBDownMAC, Src: fixture.Backend1, Dst: fixture.Client,
			Proto: fixture.ProtoTCP, SrcPort: fixture.MySQLPort, DstPort: 40000, TCPFlags: fixture.FlagSYN | fixture.FlagACK}
		down.inject(reply.Bytes())
		w.pump(down)
		back := up.takeTx()
		if len(back) != 1 {
			t.Fatalf("%d replies sent to client", len(back))
		}
		wantBack := reply
		wantBack.Src, wantBack.SrcPort, wantBack.TTL = fixture.VIP, fixture.MySQLVPort, 63
		wantBack.SrcMAC, wantBack.DstMAC = fixture.LBUpMAC, fixture.ClientMAC
		if !bytes.Equal(back[0], wantBack.Bytes()) {
			t.Fatalf("reply\n%x\nwant\n%x", back[0], wantBack.Bytes())
		}
	}
}

func TestSpreadAndStickiness(t *testing.T) {
	_, w, up, down := newTestWorker(t, false)
	per := map[packet.Addr]int{}
	first := map[uint16]packet.Addr{}
	for round := 0; round < 2; round++ {
		for port := uint16(1000); port < 1200; port++ {
			f := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
				Proto: fixture.ProtoUDP, SrcPort: port, DstPort: fixture.UDPPort, Payload: []byte("x")}
			up.inject(f.Bytes())
			w.pump(up)
			out := down.takeTx()
			var p packet.Packet
			if len(out) != 1 || packet.Decode(out[0], &p) != packet.OK {
				t.Fatal("not forwarded")
			}
			if err := fixture.VerifyChecksums(out[0]); err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				per[p.Dst]++
				first[port] = p.Dst
			} else if first[port] != p.Dst {
				t.Fatalf("flow from port %d moved from %v to %v", port, first[port], p.Dst)
			}
		}
	}
	for a, n := range per {
		if n < 70 {
			t.Errorf("backend %v got %d of 200 flows", a, n)
		}
	}
}

func TestDropsAreCounted(t *testing.T) {
	e, w, up, down := newTestWorker(t, false)
	for _, c := range fixture.Cases() {
		if c.XDP == fixture.Pass || !c.Decodes {
			up.inject(c.Frame) // passed ones are never steered in practice; the worker must still cope
		}
	}
	orphan := fixture.Frame{Src: fixture.Backend1, Dst: fixture.Client, Proto: fixture.ProtoTCP, SrcPort: 80, DstPort: 1}
	down.inject(orphan.Bytes())
	w.pump(up)
	w.pump(down)
	if len(down.takeTx())+len(up.takeTx()) != 0 {
		t.Fatal("a dropped packet was transmitted")
	}
	st := e.Stats()
	// Passed fixtures: vip:22 and host-address TCP have no flow (2), an echo
	// to a host address and an error quoting ICMP are unsupported, fragment,
	// arp is not IP, truncated TCP and an error's short quote, bad IHL;
	// IPv6: host-address TCP (no flow), fragment, too many extension
	// headers (bad header), a neighbour solicitation (unsupported),
	// truncated TCP; plus the orphan reply.
	want := map[string]uint64{"no_flow": 4, "unsupported_proto": 3, "fragment": 2, "not_ip": 1, "truncated": 3, "bad_header": 2}
	for k, v := range want {
		if st.Drops[k] != v {
			t.Errorf("drop %s = %d, want %d (%v)", k, st.Drops[k], v, st.Drops)
		}
	}
	if len(up.free) != 512 {
		t.Fatalf("frames leaked: %d of 512 free", len(up.free))
	}
}

func TestUnresolvedAndDrained(t *testing.T) {
	e, w, up, down := newTestWorker(t, false)
	c := fixtureConfig()
	c.Services[2].Backends[0].MAC = packet.MAC{}
	c.Services[0].Backends[0].Weight, c.Services[0].Backends[1].Weight = 0, 0
	if err := e.Reconfig(c); err != nil {
		t.Fatal(err)
	}
	up.inject(fixture.Cases()[4].Frame) // mysql: MAC unknown
	up.inject(fixture.Cases()[0].Frame) // http: all drained
	w.pump(up)
	if len(down.takeTx()) != 0 {
		t.Fatal("sent without a MAC or backend")
	}
	if st := e.Stats(); st.Drops["no_neighbour"] != 1 || st.Drops["no_backend"] != 1 {
		t.Fatalf("drops %v", st.Drops)
	}
}

func TestReconfigRejectsBadConfig(t *testing.T) {
	e, _, _, _ := newTestWorker(t, false)
	c := fixtureConfig()
	c.Services = append(c.Services, c.Services[0])
	if err := e.Reconfig(c); err == nil {
		t.Fatal("duplicate service accepted")
	}
	if e.cfg.Load().services.len() != len(fixtureConfig().Services) {
		t.Fatal("failed Reconfig changed the running table")
	}
}

func TestPumpAllocs(t *testing.T) {
	_, w, up, down := newTestWorker(t, false)
	udp := append([]byte(nil), fixture.Cases()[2].Frame...)
	frames := [][]byte{fixture.Cases()[0].Frame, udp, fixture.Cases()[5].Frame}
	var port uint16
	allocs := testing.AllocsPerRun(2000, func() {
		// A new UDP flow every batch: Maglev pick and conntrack insert too.
		port++
		udp[34], udp[35] = byte(port>>8), byte(port)
		for _, fr := range frames {
			up.inject(fr)
		}
		w.pump(up)
		down.complete()
		w.pump(down)
		up.complete()
	})
	if allocs != 0 {
		t.Fatalf("pump allocates %v times per batch", allocs)
	}
	if w.counters.load(cNewFlows) < 2000 {
		t.Fatalf("only %d new flows: the measured path missed inserts", w.counters.load(cNewFlows))
	}
}

// TestTxRingFull: frames that find the TX ring full are dropped, counted
// and not leaked: one-arm (in place), two-arm on one UMEM (the received
// frame is sent) and two-arm on two (copied into the other's frame).
func TestTxRingFull(t *testing.T) {
	for _, c := range []struct {
		name   string
		oneArm bool
		split  bool
	}{{"one-arm", true, false}, {"shared umem", false, false}, {"separate umems", false, true}} {
		e, w, up, down := newTestWorker(t, c.oneArm)
		if c.split {
			down = newMemQueue(512)
			w.down = down
		}
		down.txCap = 2
		for i := 0; i < 5; i++ {
			up.inject(fixture.Cases()[0].Frame)
		}
		w.pump(up)
		if got := e.Stats().Drops["tx_ring_full"]; got != 3 {
			t.Fatalf("%s: tx_ring_full %d, want 3", c.name, got)
		}
		if out := down.takeTx(); len(out) != 2 {
			t.Fatalf("%s: %d frames sent", c.name, len(out))
		}
		frames := len(up.free)
		if c.split {
			frames += len(down.free)
		}
		if want := 512 * (1 + btoi(c.split)); frames != want {
			t.Fatalf("%s: %d of %d frames free, leaked some", c.name, frames, want)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// On one UMEM the worker transmits the frame it received, not a copy.
func TestSharedUMEMSendsTheReceivedFrame(t *testing.T) {
	_, w, up, down := newTestWorker(t, false)
	up.inject(fixture.Cases()[0].Frame)
	rx := up.rx[0].Addr
	free := len(up.free)
	w.pump(up)
	if len(down.tx) != 1 || down.tx[0].Addr != rx || len(up.free) != free {
		t.Fatalf("sent %+v for received %#x; %d frames free, was %d", down.tx, rx, len(up.free), free)
	}
}

// Full batches of new flows: the workers' per-backend counts, gathered
// over several batches, never fill their 128-slot table (a full one would
// loop for ever: 300 backends), and none is lost, nor left waiting when
// the ring runs empty after a full batch (2 backends, 17 batches: the last
// one is not due by count).
func TestBackendCountsOverBatches(t *testing.T) {
	for _, c := range []struct{ backends, batches int }{{300, 40}, {2, 17}} {
		t.Run(fmt.Sprint(c.backends), func(t *testing.T) { backendCountsOverBatches(t, c.backends, c.batches) })
	}
}

func backendCountsOverBatches(t *testing.T, backends, batches int) {
	e, w, up, down := newTestWorker(t, false)
	cfg := fixtureConfig()
	cfg.Services[0].Backends = nil
	for i := range backends {
		a := netip.AddrFrom4([4]byte{10, 0, 3 + byte(i/250), 1 + byte(i%250)})
		cfg.Services[0].Backends = append(cfg.Services[0].Backends,
			Backend{ID: 100 + uint32(i), Addr: a, Port: 80, Weight: 1, MAC: fixture.BackendMAC1})
	}
	if err := e.Reconfig(cfg); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		syn := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
			Proto: fixture.ProtoTCP, DstPort: fixture.HTTPPort, TCPFlags: fixture.FlagSYN}
		for b := range batches {
			for i := range BatchSize {
				syn.SrcPort = uint16(1024 + b*BatchSize + i)
				up.inject(syn.Bytes())
			}
			w.pump(up)
			down.complete()
		}
		w.pump(up) // the ring is empty: what was gathered goes out
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the worker did not finish its batches")
	}
	var flows uint64
	for i := range backends {
		_, _, f := e.BackendCounters(100 + uint32(i))
		flows += f
	}
	if want := uint64(batches * BatchSize); flows != want {
		t.Fatalf("the backends counted %d flows of %d", flows, want)
	}
}
