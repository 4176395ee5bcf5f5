package dataplane

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// Queue is one AF_XDP socket as a worker uses it (implemented by xsk.Socket).
type Queue interface {
	Receive(batch []unix.XDPDesc) int
	// Buffer is the whole UMEM frame a descriptor is in, and where its
	// data starts: the space before it lets a header be prepended.
	Buffer(d unix.XDPDesc) (chunk []byte, off int)
	Release(addr uint64)
	Alloc() (addr uint64, buf []byte, ok bool)
	Transmit(addr uint64, n int) bool
	Flush()
	FD() int
	// UMEMID identifies the frame memory: a frame of one queue can be
	// transmitted on another with the same id as it is.
	UMEMID() uintptr
}

// BatchSize is how many descriptors a worker takes from a ring at once.
const BatchSize = 64

// FlowCacheSize is how many flows a worker's conntrack cache and express
// table hold (192 + 64 bytes each, 2 MiB a worker; only active flows'
// slots are touched). Twice 4096: with 1k flows in 4-way buckets of 4096
// slots, the ~2% of flows in buckets of five or more evicted one another.
const FlowCacheSize = 8192

// Worker forwards the packets of one RX queue pair: Upstream (clients) and
// Downstream (backends). In a one-arm setup both are the same socket and
// frames are transmitted in place without a copy.
type Worker struct {
	id       int
	eng      *Engine
	up, down Queue
	cpu      int // -1: not pinned
	batch    []unix.XDPDesc
	pkt      packet.Packet
	cur      current // the frame being handled
	decoded  bool    // pkt holds the last frame's headers
	why      Drop    // drop reason of the last dropped frame
	counters counters
	beCounts backendCounts
	flows    *conntrack.Cache // this worker's established flows, in front of the shared table
	xslots   []xslot          // the express path's flows (see express.go)
	x6slots  []x6slot         // its IPv6 flows
	xused    xbuckets         // the buckets of xslots that took a flow
	x6used   xbuckets
	xon      bool   // the express path is on for this batch
	xoff     bool   // never take the express path (tests compare with it)
	xb       xbuild // how the full path sent the current frame, for remember
	oneUMEM  bool   // up and down share frame memory: a frame goes out as it is
	x        xframe
	xnext    uint8  // the express table's round-robin victim
	xcfg     *table // the configuration the express table's flows were handled under
	xr       *xrecs // the express records for a Large table (nil: none)
	xbatch   *xbatch
	xlarge   bool   // the records are on for this batch
	xrcfg    *table // the configuration of the records' epoch
	xunkeyed int    // records batches in a row with no frame a record could take (IPv6 only, say)
	batches  uint64 // batches handled, for the backend counters' flush
	probes   []conntrack.Probe
	probed   []bool
	clock    func() int64 // unix nanoseconds; a test may stop it
	stop     atomic.Bool
	done     chan struct{}
	log      *zap.Logger
}

// current is the frame a worker handles: chunk[off:off+n]. Handling may
// move its start (a prepended header) or change its length (an answer).
type current struct {
	chunk  []byte
	off, n int
}

func (c *current) frame() []byte { return c.chunk[c.off : c.off+c.n] }

// NewWorker registers a worker for the queue pair; cpu < 0 leaves it unpinned.
func (e *Engine) NewWorker(id int, up, down Queue, cpu int) *Worker {
	w := &Worker{id: id, eng: e, up: up, down: down, cpu: cpu, batch: make([]unix.XDPDesc, BatchSize),
		done: make(chan struct{}), log: e.log.With(zap.Int("worker", id))}
	w.beCounts.used = make([]uint8, 0, 2*BatchSize)
	w.flows = e.ct.NewCache(FlowCacheSize)
	w.xslots = make([]xslot, FlowCacheSize)
	w.x6slots = make([]x6slot, FlowCacheSize)
	w.xused, w.x6used = newXbuckets(FlowCacheSize), newXbuckets(FlowCacheSize)
	w.oneUMEM = up.UMEMID() == down.UMEMID()
	w.probes = make([]conntrack.Probe, BatchSize)
	w.probed = make([]bool, BatchSize)
	w.clock = func() int64 { return time.Now().UnixNano() }
	if e.workerFlows > 0 {
		w.xr, w.xbatch = newXrecs(e.workerFlows), &xbatch{}
	}
	e.mu.Lock()
	e.workers = append(e.workers, w)
	e.mu.Unlock()
	return w
}

// Run forwards until Stop. It locks the goroutine to an OS thread and pins
// it to the worker's CPU if one was given.
func (w *Worker) Run() error {
	defer close(w.done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if w.cpu >= 0 {
		var set unix.CPUSet
		set.Set(w.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin worker %d to cpu %d: %w", w.id, w.cpu, err)
		}
	}
	w.log.Info("worker running", zap.Int("cpu", w.cpu), zap.Bool("one_arm", w.up == w.down))
	pfds := []unix.PollFd{{Fd: int32(w.up.FD()), Events: unix.POLLIN}}
	if w.down != w.up {
		pfds = append(pfds, unix.PollFd{Fd: int32(w.down.FD()), Events: unix.POLLIN})
	}
	idle := 0
	lastFlush := time.Now().UnixNano()
	defer func() {
		w.flushDeferred(time.Now().UnixNano())
		w.beCounts.flush()
	}()
	for !w.stop.Load() {
		// The table's counts of cached flows lag by at most this.
		if now := time.Now().UnixNano(); now-lastFlush >= conntrack.FlushAfter {
			w.flushDeferred(now)
			lastFlush = now
		}
		n := w.pump(w.up)
		if w.down != w.up {
			n += w.pump(w.down)
			w.down.Flush()
		}
		w.up.Flush()
		if n > 0 {
			idle = 0
			continue
		}
		// Spin briefly for the next burst, then sleep in poll(2); the
		// timeout bounds how long Stop waits.
		if idle++; idle > 128 {
			unix.Poll(pfds, 50)
			idle = 0
		}
	}
	return nil
}

// Stop asks Run to return and waits for it.
func (w *Worker) Stop() {
	w.stop.Store(true)
	<-w.done
}

// pump handles one batch from in.
func (w *Worker) pump(in Queue) int {
	k := in.Receive(w.batch)
	if k == 0 {
		if len(w.beCounts.used) > 0 { // counts a full batch left waiting
			w.beCounts.flush()
		}
		return 0
	}
	t := w.eng.cfg.Load()
	tap := w.eng.tap.Load()
	now := w.clock()
	large := w.eng.ct.Large()
	w.flows.Bypass(large, now)
	w.xon = tap == nil && !large && !w.xoff
	if w.xon {
		w.xreset(t)
	}
	w.xlargeSet(t, tap == nil && large && !w.xoff && w.xr != nil, now)
	w.counters.n[cRx] += uint64(k)
	if !large {
		for _, d := range w.batch[:k] {
			w.one(t, tap, now, in, d)
		}
	} else if w.xlarge && (w.xunkeyed < xretry || w.batches%xretry == 0) {
		if w.pumpRecords(t, now, in, k) > 0 {
			w.xunkeyed = 0
		} else {
			w.xunkeyed++
		}
	} else {
		// A software pipeline over the batch: the index slot of packet
		// i+slotAhead and the entry of packet i+entryAhead are asked for
		// while packet i is handled, so the misses overlap (see
		// conntrack.Probe). Measured best at 8 and 16 on the lab VM.
		const entryAhead, slotAhead = 8, 16
		for i := 0; i < k+slotAhead; i++ {
			if i < k {
				w.probeSlot(t, in, i)
			}
			if j := i - (slotAhead - entryAhead); j >= 0 && j < k && w.probed[j] {
				w.eng.ct.PrefetchEntry(w.probes[j])
			}
			if j := i - slotAhead; j >= 0 {
				w.one(t, tap, now, in, w.batch[j])
			}
		}
	}
	// The backends' counters are shared by the workers: under load
	// (full batches) they are added every beFlushBatches batches, so two
	// workers do not take turns on their cache lines every batch (that cost
	// ~0.05-0.1 of BenchmarkWorkerScaling's x). A batch that empties the
	// ring, and a table over half full, add them at once.
	if w.batches++; k < BatchSize || w.batches%beFlushBatches == 0 || len(w.beCounts.used) >= BatchSize/2 {
		w.beCounts.flush()
	}
	w.counters.publish()
	return k
}

// beFlushBatches bounds how many full batches a worker's backend counts
// wait: 1024 packets, microseconds under load.
const beFlushBatches = 16

// one handles a received frame and sends, answers or drops it.
func (w *Worker) one(t *table, tap *Tap, now int64, in Queue, d unix.XDPDesc) {
	chunk, off := in.Buffer(d)
	var x *xframe
	if w.xon {
		// The frame goes into w.cur only for the full path: storing a slice
		// in the heap-allocated worker cost ~10 ns a packet (measured).
		f := chunk[off : off+int(d.Len)]
		if to, ok := w.express(t, now, f, in == w.down, &w.x); ok {
			w.send(in, w.queueTo(to), d.Addr, f)
			return
		}
		x = &w.x
	}
	w.full(t, tap, now, in, d, chunk, off, x)
}

// full handles frame d (chunk[off:]) by the full path, received on in;
// x is what the express path or the records parsed of it (nil, or ipLen
// 0: not a candidate), from which it remembers the frame's handling.
func (w *Worker) full(t *table, tap *Tap, now int64, in Queue, d unix.XDPDesc, chunk []byte, off int, x *xframe) {
	// Field by field: a composite literal was built on the stack and
	// copied in 16-byte moves that stalled on its 8-byte stores.
	w.cur.chunk, w.cur.off, w.cur.n = chunk, off, int(d.Len)
	var out Queue
	verdict, side := 0, SideBackend
	w.xb.ok = false
	// Only a frame that could make a record has the table name its entry
	// (the entry's generation is a cache miss of its own at Large).
	w.flows.WantPin(w.xlarge && x != nil && x.ipLen > 0 && !x.v6)
	to := w.handle(t, now, in == w.down)
	if x != nil && x.ipLen > 0 {
		if w.xon {
			w.remember(w.cur.frame(), x)
		} else if w.xlarge {
			w.rememberRec(now, w.cur.frame(), x)
		}
	}
	switch to {
	case toBackend:
		out = w.down
	case toClient:
		out, verdict, side = w.up, 1, SideUpstream
	case back:
		out, verdict = in, 2
		if in == w.up {
			side = SideUpstream
		}
	default:
		if in == w.up {
			side = SideUpstream
		}
		verdict = 3 + int(w.why)
	}
	frame := w.cur.frame()
	if tap != nil {
		tap.offer(now, &w.pkt, w.decoded, frame, verdictNames[verdict], side)
	}
	if out == nil {
		in.Release(d.Addr)
		return
	}
	// A prepended header moved the start back within the same chunk.
	w.send(in, out, d.Addr-uint64(off-w.cur.off), frame)
}

// flushDeferred adds the counts the flow cache and the records defer to
// the table.
func (w *Worker) flushDeferred(now int64) {
	w.flows.FlushAll(now)
	if w.xr != nil {
		w.xr.flushAll(w.eng.ct, now)
	}
}

// queueTo is the queue a frame handled for the side goes out on.
func (w *Worker) queueTo(s side) Queue {
	if s == toClient {
		return w.up
	}
	return w.down
}

// probeSlot asks for the conntrack index slot of batch frame i's flow.
func (w *Worker) probeSlot(t *table, in Queue, i int) {
	d := w.batch[i]
	chunk, off := in.Buffer(d)
	var tup packet.Tuple
	ok := packet.PeekTuple(chunk[off:min(off+int(d.Len), len(chunk))], &tup)
	w.probed[i] = ok
	if !ok {
		return
	}
	reply := in == w.down
	if w.up == w.down { // one-arm: a client's packet is to a service
		_, svc := t.services.get(tup.Dst, tup.DstPort, tup.Proto)
		reply = !svc
	}
	w.probes[i] = w.eng.ct.PrefetchSlot(&tup, reply)
}

func (w *Worker) send(in, out Queue, addr uint64, frame []byte) {
	if w.oneUMEM || out == in {
		// One UMEM: the received frame itself goes out (zero-copy on a
		// zero-copy NIC).
		if !out.Transmit(addr, len(frame)) {
			w.counters.n[cDrops+counter(DropTxRingFull)]++
		}
		return
	}
	// Separate UMEMs (the kernel refused to share one between these two
	// devices): copy into a frame of the other.
	dst, buf, ok := out.Alloc()
	if !ok {
		w.counters.n[cDrops+counter(DropNoFrame)]++
		in.Release(addr)
		return
	}
	copy(buf, frame)
	in.Release(addr)
	if !out.Transmit(dst, len(frame)) {
		w.counters.n[cDrops+counter(DropTxRingFull)]++
	}
}
