package dataplane

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// memQueue is an in-memory Queue: frames to receive are injected, transmitted
// frames are recorded. It allocates only when set up. Queues made by
// sharing one memPool share their frames, as a worker's xsk sockets share
// a UMEM.
type memQueue struct {
	*memPool
	rx      []unix.XDPDesc
	tx      []unix.XDPDesc
	fd      int
	flushes int
	txCap   int // > 0: Transmit fails (and releases) past this many queued frames
	// Two lines of its own, as a socket's rings are: without it two
	// workers' queues shared cache lines and BenchmarkWorkers measured
	// that instead of the workers (2 workers no faster than 1).
	_ [128 - 80]byte
}

const memFrame = 2048

type memPool struct {
	umem []byte
	free []uint64
	_    [64 - 48]byte // a line of its own (see memQueue)
}

func newMemPool(frames int) *memPool {
	p := &memPool{umem: make([]byte, frames*memFrame)}
	for i := frames - 1; i >= 0; i-- {
		p.free = append(p.free, uint64(i*memFrame))
	}
	return p
}

// newMemQueue is a queue with frames of its own.
func newMemQueue(frames int) *memQueue { return newMemQueueOn(newMemPool(frames)) }

// newMemQueueOn is a queue on a pool other queues may share.
func newMemQueueOn(p *memPool) *memQueue {
	n := len(p.free)
	return &memQueue{memPool: p, rx: make([]unix.XDPDesc, 0, n), tx: make([]unix.XDPDesc, 0, n)}
}

func (p *memPool) UMEMID() uintptr { return uintptr(unsafe.Pointer(p)) }

// headroom is where the kernel puts received data in a frame
// (XDP_PACKET_HEADROOM).
const headroom = 256

// inject places a frame in the RX ring, after the headroom as the kernel does.
func (q *memQueue) inject(frame []byte) {
	addr, buf, _ := q.Alloc()
	copy(buf[headroom:], frame)
	q.rx = append(q.rx, unix.XDPDesc{Addr: addr + headroom, Len: uint32(len(frame))})
}

func (q *memQueue) Receive(batch []unix.XDPDesc) int {
	n := copy(batch, q.rx)
	q.rx = q.rx[:copy(q.rx, q.rx[n:])]
	return n
}
func (q *memPool) Frame(d unix.XDPDesc) []byte { return q.umem[d.Addr : d.Addr+uint64(d.Len)] }
func (q *memPool) Buffer(d unix.XDPDesc) ([]byte, int) {
	base := d.Addr &^ (memFrame - 1)
	return q.umem[base : base+memFrame], int(d.Addr - base)
}
func (q *memPool) Release(addr uint64) { q.free = append(q.free, addr&^(memFrame-1)) }
func (q *memPool) Alloc() (uint64, []byte, bool) {
	if len(q.free) == 0 {
		return 0, nil, false
	}
	a := q.free[len(q.free)-1]
	q.free = q.free[:len(q.free)-1]
	return a, q.umem[a : a+memFrame], true
}
func (q *memQueue) Transmit(addr uint64, n int) bool {
	if q.txCap > 0 && len(q.tx) >= q.txCap {
		q.Release(addr) // as xsk.Socket does
		return false
	}
	q.tx = append(q.tx, unix.XDPDesc{Addr: addr, Len: uint32(n)})
	return true
}
func (q *memQueue) Flush()  { q.flushes++ }
func (q *memQueue) FD() int { return q.fd }

// takeTx returns copies of the transmitted frames and frees their buffers.
func (q *memQueue) takeTx() [][]byte {
	var out [][]byte
	for _, d := range q.tx {
		out = append(out, append([]byte(nil), q.Frame(d)...))
		q.Release(d.Addr)
	}
	q.tx = q.tx[:0]
	return out
}

// complete gives the transmitted frames back, as TX completions do.
func (q *memQueue) complete() {
	for _, d := range q.tx {
		q.Release(d.Addr)
	}
	q.tx = q.tx[:0]
}
