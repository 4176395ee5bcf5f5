package dataplane

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// Queue is one AF_XDP socket as a worker uses it (implemented by xsk.Socket).
type Queue interface {
	Receive(batch []unix.XDPDesc) int
	Frame(d unix.XDPDesc) []byte
	Release(addr uint64)
	Alloc() (addr uint64, buf []byte, ok bool)
	Transmit(addr uint64, n int) bool
	Flush()
	FD() int
}

// BatchSize is how many descriptors a worker takes from a ring at once.
const BatchSize = 64

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
	decoded  bool // pkt holds the last frame's headers
	why      Drop // drop reason of the last dropped frame
	counters counters
	stop     atomic.Bool
	done     chan struct{}
	log      *zap.Logger
}

// NewWorker registers a worker for the queue pair; cpu < 0 leaves it unpinned.
func (e *Engine) NewWorker(id int, up, down Queue, cpu int) *Worker {
	w := &Worker{id: id, eng: e, up: up, down: down, cpu: cpu, batch: make([]unix.XDPDesc, BatchSize),
		done: make(chan struct{}), log: e.log.With(zap.Int("worker", id))}
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
	for !w.stop.Load() {
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
		return 0
	}
	t := w.eng.cfg.Load()
	tap := w.eng.tap.Load()
	now := time.Now().UnixNano()
	w.counters.rx.Add(uint64(k))
	for _, d := range w.batch[:k] {
		frame := in.Frame(d)
		var out Queue
		verdict, side := 0, SideBackend
		switch w.handle(t, frame, now, in == w.down) {
		case toBackend:
			out = w.down
		case toClient:
			out, verdict, side = w.up, 1, SideUpstream
		default:
			if in == w.up {
				side = SideUpstream
			}
			verdict = 2 + int(w.why)
		}
		if tap != nil {
			tap.offer(now, &w.pkt, w.decoded, frame, verdictNames[verdict], side)
		}
		if out == nil {
			in.Release(d.Addr)
			continue
		}
		w.send(in, out, d, frame)
	}
	return k
}

func (w *Worker) send(in, out Queue, d unix.XDPDesc, frame []byte) {
	if out == in {
		if !out.Transmit(d.Addr, int(d.Len)) {
			w.counters.drops[DropTxRingFull].Add(1)
		}
		return
	}
	// Each socket has its own UMEM (asavie/xdp has no shared UMEM), so a
	// frame crossing NICs is copied into a frame of the other socket.
	addr, buf, ok := out.Alloc()
	if !ok {
		w.counters.drops[DropNoFrame].Add(1)
		in.Release(d.Addr)
		return
	}
	copy(buf, frame)
	in.Release(d.Addr)
	if !out.Transmit(addr, len(frame)) {
		w.counters.drops[DropTxRingFull].Add(1)
	}
}
