package xsk

import (
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Desc is an RX or TX descriptor: a frame address in the UMEM and a length.
type Desc = unix.XDPDesc

// Options size a UMEM and its sockets' rings. Sizes must be powers of two.
type Options struct {
	NumFrames int // frames in the UMEM
	FrameSize int // 2048 or 4096
	RingSize  int // fill, completion, rx and tx ring size of each socket
	// Copy forces copy mode (needed with generic XDP); otherwise zero-copy
	// is tried first and copy mode used when the driver has none.
	Copy bool
}

// DefaultOptions suit a 1500-byte MTU, for one socket.
var DefaultOptions = Options{NumFrames: 4096, FrameSize: 2048, RingSize: 2048}

// Counters are this socket's own events.
type Counters struct {
	RxPackets  uint64 `json:"rx_packets"`
	TxPackets  uint64 `json:"tx_packets"`
	TxRingFull uint64 `json:"tx_ring_full"`  // a frame had no TX slot and was dropped
	NoFrame    uint64 `json:"no_free_frame"` // no UMEM frame to copy a packet into
	KickErrors uint64 `json:"kick_errors"`   // sendto failed with something other than EAGAIN/EBUSY/ENOBUFS
	// Kicks are the sendto calls made for TX, and RxWakeups the recvfrom
	// calls made because the kernel asked (need_wakeup) for fill frames.
	Kicks     uint64 `json:"kicks"`
	RxWakeups uint64 `json:"rx_wakeups"`
}

// Socket is one AF_XDP socket bound to (ifindex, queue). It is not safe for
// concurrent use: one worker owns it (and its UMEM).
type Socket struct {
	fd         int
	ifindex    int
	queue      int
	u          *UMEM
	ownsUMEM   bool // Close closes u too
	fill       *ring
	comp       *ring
	rx         *ring
	tx         *ring
	fillMax    int
	zeroCopy   bool
	needWakeup bool
	// Why zero-copy, or sharing the UMEM, was not possible ("" if it was).
	zeroCopyError, shareError string

	rxPackets, txPackets, txRingFull, noFrame, kickErrors, kicks, rxWakeups atomic.Uint64
}

// Open creates a socket with a UMEM of its own and binds it to ifindex/queue.
func Open(ifindex, queue int, o Options) (*Socket, error) {
	u, err := NewUMEM(o)
	if err != nil {
		return nil, err
	}
	s, err := u.Open(ifindex, queue)
	if err != nil {
		u.Close()
		return nil, err
	}
	s.ownsUMEM = true
	return s, nil
}

// open makes a socket on u with bind flags (XDP_SHARED_UMEM: sharing the
// UMEM registered with socket shareFD).
func open(u *UMEM, ifindex, queue int, flags uint16, shareFD int) (_ *Socket, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket(AF_XDP): %w", err)
	}
	s := &Socket{fd: fd, ifindex: ifindex, queue: queue, u: u}
	defer func() {
		if err != nil {
			s.closeFD()
		}
	}()
	if flags&unix.XDP_SHARED_UMEM == 0 {
		if err := registerUMEM(fd, u.mem, int(u.frameSize)); err != nil {
			return nil, err
		}
	}
	// Every socket has its own fill and completion rings: a shared UMEM on
	// another device or queue needs them (Linux 5.10+).
	if err := setRingSizes(fd, u.ringSize); err != nil {
		return nil, err
	}
	off, err := mmapOffsets(fd)
	if err != nil {
		return nil, err
	}
	if s.fill, err = mapRing(fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, u.ringSize, 8); err != nil {
		return nil, err
	}
	if s.comp, err = mapRing(fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, u.ringSize, 8); err != nil {
		return nil, err
	}
	if s.rx, err = mapRing(fd, unix.XDP_PGOFF_RX_RING, off.Rx, u.ringSize, 16); err != nil {
		return nil, err
	}
	if s.tx, err = mapRing(fd, unix.XDP_PGOFF_TX_RING, off.Tx, u.ringSize, 16); err != nil {
		return nil, err
	}
	sa := &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(ifindex), QueueID: uint32(queue), SharedUmemFD: uint32(shareFD)}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind af_xdp socket to ifindex %d queue %d (flags %#x): %w", ifindex, queue, flags, err)
	}
	if s.zeroCopy, err = zeroCopy(fd); err != nil {
		return nil, err
	}
	// A sharing socket runs as the UMEM's first one does.
	s.needWakeup = flags&unix.XDP_USE_NEED_WAKEUP != 0
	if flags&unix.XDP_SHARED_UMEM != 0 {
		s.needWakeup = u.owner.needWakeup
	}
	// Start from the kernel's current indices (all zero for a new socket).
	s.fill.cached = *s.fill.producer
	s.tx.cached = *s.tx.producer
	s.rx.cached = *s.rx.consumer
	s.comp.cached = *s.comp.consumer
	return s, nil
}

// FD is the socket's file descriptor, for the XSKMAP and poll(2).
func (s *Socket) FD() int { return s.fd }

// Queue is the RX queue the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// ZeroCopy reports whether the kernel runs the socket in zero-copy mode,
// and if not, why zero-copy was refused ("" when copy mode was asked for).
func (s *Socket) ZeroCopy() (bool, string) { return s.zeroCopy, s.zeroCopyError }

// NeedWakeup reports whether the socket kicks the kernel only when a ring
// says so (XDP_USE_NEED_WAKEUP).
func (s *Socket) NeedWakeup() bool { return s.needWakeup }

// UMEM is the frame memory the socket uses.
func (s *Socket) UMEM() *UMEM { return s.u }

// UMEMID identifies the socket's UMEM: sockets with equal ids transmit each
// other's frames without a copy.
func (s *Socket) UMEMID() uintptr { return uintptr(s.u.ptr()) }

// ShareError says why the socket could not share the UMEM it was opened on
// ("" if it does, or was its first socket).
func (s *Socket) ShareError() string { return s.shareError }

// Receive takes up to len(batch) received descriptors. The frames stay owned
// by the caller until Release or Transmit.
func (s *Socket) Receive(batch []Desc) int {
	n := min(s.rx.available(), uint32(len(batch)))
	if n == 0 {
		// A zero-copy driver that ran out of fill frames waits to be told
		// there are new ones.
		if s.needWakeup && s.fill.needsWakeup() {
			s.rxWakeups.Add(1)
			unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		}
		return 0
	}
	for i := uint32(0); i < n; i++ {
		batch[i] = *s.rx.desc(s.rx.cached + i)
	}
	s.rx.cached += n
	s.rx.release()
	s.rxPackets.Add(uint64(n))
	return int(n)
}

// Frame returns the bytes of a descriptor's frame.
func (s *Socket) Frame(d Desc) []byte {
	return s.u.mem[d.Addr : d.Addr+uint64(d.Len)]
}

// Buffer returns the whole UMEM frame a descriptor is in and the offset of
// its data (the kernel leaves headroom in front: XDP_PACKET_HEADROOM).
func (s *Socket) Buffer(d Desc) ([]byte, int) {
	base := d.Addr &^ (s.u.frameSize - 1)
	return s.u.mem[base : base+s.u.frameSize], int(d.Addr - base)
}

// Release gives a received frame back for reuse.
func (s *Socket) Release(addr uint64) { s.u.release(addr) }

// Alloc takes a free frame to build a packet to transmit.
func (s *Socket) Alloc() (addr uint64, buf []byte, ok bool) {
	addr, ok = s.u.alloc()
	if !ok {
		s.noFrame.Add(1)
		return 0, nil, false
	}
	return addr, s.u.mem[addr : addr+s.u.frameSize], true
}

// Transmit queues a frame of this socket's UMEM (received on any of its
// sockets, or allocated); it is sent on the next Flush. On false the ring
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

// Flush publishes queued TX descriptors and kicks the kernel when it asks
// to be (every time without need_wakeup), reaps completions and refills
// the fill ring. Call it once per batch.
func (s *Socket) Flush() {
	if s.tx.cached != *s.tx.producer {
		s.txPackets.Add(uint64(s.tx.cached - *s.tx.producer))
		s.tx.publish()
	}
	// Copy mode sends at most 32 frames per sendto and says EAGAIN when more
	// remain, so kick until the kernel has taken the ring (bounded).
	for i := 0; i < 64 && s.tx.pending() > 0 && (!s.needWakeup || s.tx.needsWakeup()); i++ {
		s.kicks.Add(1)
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
		s.u.release(*s.comp.addr(s.comp.cached + i))
	}
	s.comp.cached += n
	if n > 0 {
		s.comp.release()
	}
}

func (s *Socket) refill() {
	n := min(s.fillMax-int(s.fill.pending()), len(s.u.free), int(s.fill.free()))
	if n <= 0 {
		return
	}
	for i := 0; i < n; i++ {
		a, _ := s.u.alloc()
		*s.fill.addr(s.fill.cached) = a
		s.fill.cached++
	}
	s.fill.publish()
}

// Counters returns this socket's event counters.
func (s *Socket) Counters() Counters {
	return Counters{RxPackets: s.rxPackets.Load(), TxPackets: s.txPackets.Load(), TxRingFull: s.txRingFull.Load(),
		NoFrame: s.noFrame.Load(), KickErrors: s.kickErrors.Load(), Kicks: s.kicks.Load(), RxWakeups: s.rxWakeups.Load()}
}

// KernelStats returns the kernel's XDP_STATISTICS for the socket (drops for
// a full RX ring, an empty fill ring, invalid descriptors).
func (s *Socket) KernelStats() (unix.XDPStatistics, error) {
	st, err := statistics(s.fd)
	if err != nil {
		return st, fmt.Errorf("xsk stats ifindex %d queue %d: %w", s.ifindex, s.queue, err)
	}
	return st, nil
}

func (s *Socket) closeFD() error {
	var errs []error
	for _, r := range []*ring{s.fill, s.comp, s.rx, s.tx} {
		errs = append(errs, r.unmap())
	}
	if s.fd >= 0 {
		errs = append(errs, unix.Close(s.fd))
		s.fd = -1
	}
	return errors.Join(errs...)
}

// Close unmaps the rings and closes the socket, and its UMEM if it has
// one of its own. Sockets sharing a UMEM are closed before its owner's
// memory goes (UMEM.Close).
func (s *Socket) Close() error {
	err := s.closeFD()
	if s.ownsUMEM {
		err = errors.Join(err, s.u.Close())
	}
	return err
}
