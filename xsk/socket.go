package xsk

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/asavie/xdp"
	"golang.org/x/sys/unix"
)

// Desc is an RX or TX descriptor: a frame address in the UMEM and a length.
type Desc = unix.XDPDesc

// Options size the UMEM and rings. Ring sizes must be powers of two.
type Options struct {
	NumFrames int // frames in the UMEM; half of them can sit in the fill ring
	FrameSize int // power of two, 2048 or 4096
	RingSize  int // fill, completion, rx and tx ring size
	// Copy forces copy mode (needed with generic XDP); otherwise the kernel
	// picks zero-copy when the driver supports it.
	Copy bool
}

// DefaultOptions suit a 1500-byte MTU.
var DefaultOptions = Options{NumFrames: 4096, FrameSize: 2048, RingSize: 2048}

// Counters are this socket's own events.
type Counters struct {
	RxPackets  uint64 `json:"rx_packets"`
	TxPackets  uint64 `json:"tx_packets"`
	TxRingFull uint64 `json:"tx_ring_full"`  // a frame had no TX slot and was dropped
	NoFrame    uint64 `json:"no_free_frame"` // no UMEM frame to copy a packet into
	KickErrors uint64 `json:"kick_errors"`   // sendto failed with something other than EAGAIN/EBUSY/ENOBUFS
}

// Socket is one AF_XDP socket bound to (ifindex, queue). It is not safe for
// concurrent use: one worker owns it.
type Socket struct {
	lib       *xdp.Socket
	fd        int
	ifindex   int
	queue     int
	umem      []byte
	frameSize uint64
	fill      *ring
	comp      *ring
	rx        *ring
	tx        *ring
	freeStack []uint64
	fillMax   int

	rxPackets, txPackets, txRingFull, noFrame, kickErrors atomic.Uint64
}

// asavie/xdp takes bind flags from a package variable; guard it.
var bindMu sync.Mutex

// Open creates the socket and its UMEM and binds it to ifindex/queue.
func Open(ifindex, queue int, o Options) (s *Socket, err error) {
	if o.NumFrames == 0 {
		o = DefaultOptions
	}
	for _, v := range []int{o.FrameSize, o.RingSize} {
		if v <= 0 || v&(v-1) != 0 {
			return nil, fmt.Errorf("xsk options %+v: sizes must be powers of two", o)
		}
	}
	bindMu.Lock()
	xdp.DefaultSocketFlags = 0
	if o.Copy {
		xdp.DefaultSocketFlags = unix.XDP_COPY
	}
	lib, err := xdp.NewSocket(ifindex, queue, &xdp.SocketOptions{
		NumFrames: o.NumFrames, FrameSize: o.FrameSize,
		FillRingNumDescs: o.RingSize, CompletionRingNumDescs: o.RingSize,
		RxRingNumDescs: o.RingSize, TxRingNumDescs: o.RingSize,
	})
	bindMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("open af_xdp socket on ifindex %d queue %d: %w", ifindex, queue, err)
	}
	s = &Socket{lib: lib, fd: lib.FD(), ifindex: ifindex, queue: queue, frameSize: uint64(o.FrameSize)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// GetFrame slices the UMEM without bounds by frame; ask for all of it.
	s.umem = lib.GetFrame(xdp.Desc{Addr: 0, Len: uint32(o.NumFrames * o.FrameSize)})

	off, err := mmapOffsets(s.fd)
	if err != nil {
		return nil, err
	}
	if s.fill, err = mapRing(s.fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, o.RingSize, 8); err != nil {
		return nil, err
	}
	if s.comp, err = mapRing(s.fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, o.RingSize, 8); err != nil {
		return nil, err
	}
	if s.rx, err = mapRing(s.fd, unix.XDP_PGOFF_RX_RING, off.Rx, o.RingSize, 16); err != nil {
		return nil, err
	}
	if s.tx, err = mapRing(s.fd, unix.XDP_PGOFF_TX_RING, off.Tx, o.RingSize, 16); err != nil {
		return nil, err
	}
	// Start from the kernel's current indices (all zero for a new socket).
	s.fill.cached = *s.fill.producer
	s.tx.cached = *s.tx.producer
	s.rx.cached = *s.rx.consumer
	s.comp.cached = *s.comp.consumer

	s.freeStack = make([]uint64, 0, o.NumFrames)
	for i := o.NumFrames - 1; i >= 0; i-- {
		s.freeStack = append(s.freeStack, uint64(i)*s.frameSize)
	}
	// Keep at most half the frames in the fill ring so TX always has frames.
	s.fillMax = min(o.RingSize, o.NumFrames/2)
	s.refill()
	return s, nil
}

func mmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	size := uint32(unsafe.Sizeof(off))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return off, fmt.Errorf("getsockopt XDP_MMAP_OFFSETS: %w", errno)
	}
	return off, nil
}

// FD is the socket's file descriptor, for the XSKMAP and poll(2).
func (s *Socket) FD() int { return s.fd }

// Queue is the RX queue the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// Receive takes up to len(batch) received descriptors. The frames stay owned
// by the caller until Release or Transmit.
func (s *Socket) Receive(batch []Desc) int {
	n := min(s.rx.available(), uint32(len(batch)))
	for i := uint32(0); i < n; i++ {
		batch[i] = *s.rx.desc(s.rx.cached + i)
	}
	s.rx.cached += n
	if n > 0 {
		s.rx.release()
		s.rxPackets.Add(uint64(n))
	}
	return int(n)
}

// Frame returns the bytes of a descriptor's frame.
func (s *Socket) Frame(d Desc) []byte {
	return s.umem[d.Addr : d.Addr+uint64(d.Len)]
}

// Buffer returns the whole UMEM frame a descriptor is in and the offset of
// its data (the kernel leaves headroom in front: XDP_PACKET_HEADROOM).
func (s *Socket) Buffer(d Desc) ([]byte, int) {
	base := d.Addr &^ (s.frameSize - 1)
	return s.umem[base : base+s.frameSize], int(d.Addr - base)
}

// Release gives a received frame back for reuse.
func (s *Socket) Release(addr uint64) {
	s.freeStack = append(s.freeStack, addr&^(s.frameSize-1))
}

// Alloc takes a free frame to build a packet to transmit.
func (s *Socket) Alloc() (addr uint64, buf []byte, ok bool) {
	n := len(s.freeStack)
	if n == 0 {
		s.noFrame.Add(1)
		return 0, nil, false
	}
	addr = s.freeStack[n-1]
	s.freeStack = s.freeStack[:n-1]
	return addr, s.umem[addr : addr+s.frameSize], true
}

// Transmit queues a frame; it is sent on the next Flush. On false the ring
// was full, the frame was released and the drop counted.
func (s *Socket) Transmit(addr uint64, n int) bool {
	if s.tx.free() == 0 {
		s.txRingFull.Add(1)
		s.Release(addr)
		return false
	}
	*s.tx.desc(s.tx.cached) = Desc{Addr: addr, Len: uint32(n)}
	s.tx.cached++
	return true
}

// Flush publishes queued TX descriptors and kicks the kernel, reaps
// completions and refills the fill ring. Call it once per batch.
func (s *Socket) Flush() {
	if s.tx.cached != *s.tx.producer {
		s.txPackets.Add(uint64(s.tx.cached - *s.tx.producer))
		s.tx.publish()
	}
	// Copy mode sends at most 32 frames per sendto and says EAGAIN when more
	// remain, so kick until the kernel has taken the ring (bounded).
	for i := 0; i < 64 && s.tx.pending() > 0; i++ {
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		if errno == 0 || errno == unix.EAGAIN || errno == unix.EBUSY || errno == unix.EINTR {
			continue
		}
		if errno != unix.ENOBUFS {
			s.kickErrors.Add(1)
		}
		break
	}
	s.complete()
	s.refill()
}

func (s *Socket) complete() {
	n := s.comp.available()
	for i := uint32(0); i < n; i++ {
		s.Release(*s.comp.addr(s.comp.cached + i))
	}
	s.comp.cached += n
	if n > 0 {
		s.comp.release()
	}
}

func (s *Socket) refill() {
	inFill := int(s.fill.pending())
	n := min(s.fillMax-inFill, len(s.freeStack), int(s.fill.free()))
	if n <= 0 {
		return
	}
	for i := 0; i < n; i++ {
		top := len(s.freeStack) - 1
		*s.fill.addr(s.fill.cached) = s.freeStack[top]
		s.freeStack = s.freeStack[:top]
		s.fill.cached++
	}
	s.fill.publish()
}

// Counters returns this socket's event counters.
func (s *Socket) Counters() Counters {
	return Counters{RxPackets: s.rxPackets.Load(), TxPackets: s.txPackets.Load(), TxRingFull: s.txRingFull.Load(),
		NoFrame: s.noFrame.Load(), KickErrors: s.kickErrors.Load()}
}

// KernelStats returns the kernel's XDP_STATISTICS for the socket (drops for
// a full RX ring, an empty fill ring, invalid descriptors).
func (s *Socket) KernelStats() (unix.XDPStatistics, error) {
	st, err := s.lib.Stats()
	if err != nil {
		return unix.XDPStatistics{}, fmt.Errorf("xsk stats ifindex %d queue %d: %w", s.ifindex, s.queue, err)
	}
	return st.KernelStats, nil
}

// Close unmaps the rings and closes the socket and UMEM.
func (s *Socket) Close() error {
	var errs []error
	for _, r := range []*ring{s.fill, s.comp, s.rx, s.tx} {
		errs = append(errs, r.unmap())
	}
	if s.lib != nil {
		errs = append(errs, s.lib.Close())
		s.lib = nil
	}
	return errors.Join(errs...)
}
