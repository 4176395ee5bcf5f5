package dataplane

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

// flowBench is a worker set-up with n established TCP flows to VIP:80
// (SYN, SYN-ACK, ACK done), for measuring the established-flow path.
type flowBench struct {
	e       *Engine
	ws      []*Worker
	ups     []*memQueue
	downs   []*memQueue
	ack     []byte // client ACK template; flow i patches its source
	n       int
	workers int
	o       offsets
}

// offsets are where a frame's addresses and ports are, and how long an
// address is: Ethernet/IPv4 (no options) or Ethernet/IPv6.
type offsets struct{ src, dst, alen, sport, dport int }

var (
	offs4 = offsets{src: 14 + 12, dst: 14 + 16, alen: 4, sport: 14 + 20, dport: 14 + 22}
	offs6 = offsets{src: 14 + 8, dst: 14 + 24, alen: 16, sport: 14 + 40, dport: 14 + 42}
)

// setClient makes frame f come from flow i's client: the last two bytes
// of the address and the port.
func (o offsets) setClient(f []byte, i int) {
	f[o.src+o.alen-2], f[o.src+o.alen-1] = byte(i>>8), byte(i)
	p := 1024 + uint16(i>>16)
	f[o.sport], f[o.sport+1] = byte(p>>8), byte(p)
}

func newFlowBench(tb testing.TB, flows, workers int) *flowBench {
	return newFlowBenchFamily(tb, flows, workers, false)
}

// newFlowBenchFamily is newFlowBench over IPv6 when v6 (VIP6:80).
func newFlowBenchFamily(tb testing.TB, flows, workers int, v6 bool) *flowBench {
	tb.Helper()
	e := NewEngine(conntrack.New(max(2*flows, 4096), conntrack.DefaultTimeouts), zap.NewNop())
	if err := e.Reconfig(fixtureConfig()); err != nil {
		tb.Fatal(err)
	}
	// Records for every flow's client direction in each worker, as the
	// daemon sizes them by default (2 x conntrack-size / workers).
	if err := e.SetWorkerFlows(2 * flows / workers); err != nil {
		tb.Fatal(err)
	}
	fb := &flowBench{e: e, n: flows, workers: workers, o: offs4}
	client, vip, backend := fixture.Client, fixture.VIP, fixture.Backend1
	if v6 {
		fb.o, client, vip, backend = offs6, fixture.Client6, fixture.VIP6, fixture.Backend61
	}
	o := fb.o
	for k := range workers {
		pool := newMemPool(1024)
		up, down := newMemQueueOn(pool), newMemQueueOn(pool)
		fb.ws = append(fb.ws, e.NewWorker(k, up, down, -1))
		fb.ups, fb.downs = append(fb.ups, up), append(fb.downs, down)
	}
	c := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: client, Dst: vip,
		Proto: fixture.ProtoTCP, SrcPort: 40000, DstPort: fixture.HTTPPort}
	c.TCPFlags = fixture.FlagSYN
	syn := c.Bytes()
	c.TCPFlags = fixture.FlagACK
	fb.ack = c.Bytes()
	synack := fixture.Frame{SrcMAC: fixture.BackendMAC1, DstMAC: fixture.LBDownMAC, Src: backend, Dst: client,
		Proto: fixture.ProtoTCP, SrcPort: 80, DstPort: 40000, TCPFlags: fixture.FlagSYN | fixture.FlagACK}.Bytes()
	w, up, down := fb.ws[0], fb.ups[0], fb.downs[0]
	for i := range flows {
		o.setClient(syn, i)
		up.inject(syn)
		w.pump(up)
		if len(down.tx) != 1 {
			tb.Fatalf("flow %d: SYN not forwarded", i)
		}
		// The backend answers from where the SYN went.
		fwd := down.Frame(down.tx[0])
		copy(synack[o.src:o.src+o.alen], fwd[o.dst:o.dst+o.alen])
		copy(synack[o.sport:o.sport+2], fwd[o.dport:o.dport+2])
		copy(synack[o.dst:o.dst+o.alen], syn[o.src:o.src+o.alen])
		copy(synack[o.dport:o.dport+2], syn[o.sport:o.sport+2])
		down.takeTx()
		down.inject(synack)
		w.pump(down)
		up.takeTx()
		o.setClient(fb.ack, i)
		up.inject(fb.ack)
		w.pump(up)
		down.takeTx()
	}
	if got := e.Conntrack().Len(); got != flows {
		tb.Fatalf("%d flows tracked, want %d", got, flows)
	}
	return fb
}

// run sends packets ACKs through worker k, flow after flow in a stride
// that defeats the hardware prefetcher, worker k taking flows k, k+W, ...
func (fb *flowBench) run(k, packets int) {
	w, up, down := fb.ws[k], fb.ups[k], fb.downs[k]
	ack := append([]byte(nil), fb.ack...)
	per := fb.n / fb.workers
	j := 0
	// The deferred counts go to the table every FlushAfter, as Run does.
	flushed := time.Now().UnixNano()
	for p := 0; p < packets; p++ {
		j = (j + 7919) % per
		fb.o.setClient(ack, j*fb.workers+k)
		up.inject(ack)
		if len(up.rx) == BatchSize {
			w.pump(up)
			down.complete()
			if p%(16*BatchSize) == BatchSize-1 {
				if now := time.Now().UnixNano(); now-flushed >= conntrack.FlushAfter {
					w.flushDeferred(now)
					flushed = now
				}
			}
		}
	}
	w.pump(up)
	down.complete()
}

// BenchmarkHarness is BenchmarkEstablished's loop with a worker that only
// moves each frame from one queue to the other: the cost of the in-memory
// NIC (building each frame, the rings, completions), which a real NIC
// does in hardware. BenchmarkEstablished minus this is the pipeline's own.
func BenchmarkHarness(b *testing.B) {
	fb := newFlowBench(b, 1<<10, 1)
	up, down := fb.ups[0], fb.downs[0]
	ack := append([]byte(nil), fb.ack...)
	batch := make([]unix.XDPDesc, BatchSize)
	move := func() {
		for _, d := range batch[:up.Receive(batch)] {
			down.Transmit(d.Addr, int(d.Len))
		}
		down.complete()
	}
	b.ResetTimer()
	j := 0
	for range b.N {
		j = (j + 7919) % fb.n
		fb.o.setClient(ack, j)
		up.inject(ack)
		if len(up.rx) == BatchSize {
			move()
		}
	}
	move()
}

// BenchmarkEstablished is the per-packet worker path for a client's packet
// of an established flow, at three table sizes: 1k flows (the express
// path), LargeFlows (the smallest table that takes the Large path, whose
// misses are cheaper than at 1M flows but not free: ~100 ns per dependent
// line on the lab VM) and 1M flows. ns/op is per packet. The frames go
// back to the pool as a zero-copy NIC's completions would.
func BenchmarkEstablished(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		for _, flows := range []int{1 << 10, conntrack.LargeFlows, 1 << 20} {
			name := fmt.Sprintf("flows=%d", flows)
			if v6 {
				name = "ipv6/" + name
			}
			b.Run(name, func(b *testing.B) {
				fb := newFlowBenchFamily(b, flows, 1, v6)
				b.ReportAllocs()
				fb.measure(b, 1)
			})
		}
	}
}

// BenchmarkWorkers runs 1 and 2 workers on their own goroutines over one
// engine and table (1k flows); ns/op is wall time per packet of all of
// them, so 2 workers on 2 cores scale by the ratio of the two.
func BenchmarkWorkers(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			fb := newFlowBench(b, 1<<10, workers)
			fb.measure(b, workers)
		})
	}
}

// BenchmarkWorkerScaling is BenchmarkWorkers as one ratio: every round
// sends the same number of packets through 1 worker, then through 2 (each
// on its own engine and 1k flows), so the two share the machine's state of
// the moment; "x" is how many times faster 2 workers were over all rounds.
// ns/op is per round of both.
func BenchmarkWorkerScaling(b *testing.B) {
	const packets = 1 << 16
	one, two := newFlowBench(b, 1<<10, 1), newFlowBench(b, 1<<10, 2)
	var t1, t2 time.Duration
	b.ResetTimer()
	for range b.N {
		t1 += one.elapsed(1, packets)
		t2 += two.elapsed(2, packets)
	}
	b.ReportMetric(float64(t1)/float64(t2), "x")
	b.ReportMetric(float64(t1.Nanoseconds())/float64(b.N*packets), "ns/pkt-1w")
	b.ReportMetric(float64(t2.Nanoseconds())/float64(b.N*packets), "ns/pkt-2w")
}

func (fb *flowBench) measure(b *testing.B, workers int) {
	// Every flow once before the clock starts: established flows, as a
	// worker holds them in its flow cache or records after their first
	// packets (at Large, the handshakes of the first LargeFlows flows made
	// no record: they were taken before the table was Large).
	fb.elapsed(workers, fb.n)
	before := fb.e.Stats()
	b.ResetTimer()
	elapsed := fb.elapsed(workers, b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds()/1e6, "Mpps")
	// The share of the packets the express path took.
	after := fb.e.Stats()
	b.ReportMetric(float64(after.Express-before.Express)/float64(after.Forwarded-before.Forwarded), "express")
}

// elapsed is the wall time of workers workers sending packets in all.
func (fb *flowBench) elapsed(workers, packets int) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for k := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fb.run(k, packets/workers)
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// Two workers on their own goroutines send packets of the same flows: no
// packet is lost from the table's counts once the caches are flushed, and
// the race detector finds nothing (go test -race).
func TestWorkersShareFlows(t *testing.T) {
	// A small table (cached flows) and a large one (prefetched lookups).
	for _, flows := range []int{256, conntrack.LargeFlows + 1000} {
		t.Run(fmt.Sprint(flows), func(t *testing.T) { workersShareFlows(t, flows) })
	}
}

func workersShareFlows(t *testing.T, flows int) {
	const per = 20000
	fb := newFlowBench(t, flows, 2)
	if large := fb.e.Conntrack().Large(); large != (flows > conntrack.LargeFlows) {
		t.Fatalf("%d flows: Large() = %v", flows, large)
	}
	count := func() (n uint64) {
		for _, e := range fb.e.Conntrack().Entries(0) {
			n += e.Packets
		}
		return n
	}
	before := count()
	backendPackets := func() (n uint64) {
		for id := uint32(1); id <= 2; id++ { // the HTTP service's backends
			p, _, _ := fb.e.BackendCounters(id)
			n += p
		}
		return n
	}
	beBefore := backendPackets()
	var wg sync.WaitGroup
	for k := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fb.run(k, per)
			fb.ws[k].flushDeferred(time.Now().UnixNano())
		}()
	}
	wg.Wait()
	if got := count() - before; got != 2*per {
		t.Fatalf("the table counted %d packets of %d", got, 2*per)
	}
	if st := fb.e.Stats(); st.Forwarded < 2*per {
		t.Fatalf("forwarded %d of %d", st.Forwarded, 2*per)
	}
	// Each worker adds to its own shard of the backends' counters.
	if got := backendPackets() - beBefore; got != 2*per {
		t.Fatalf("the backends' counters have %d packets of %d", got, 2*per)
	}
}
