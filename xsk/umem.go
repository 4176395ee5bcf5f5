package xsk

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UMEM is the frame memory of one worker and its free frames. The first
// socket opened on it registers it with the kernel; the next ones share it
// (XDP_SHARED_UMEM), each with fill and completion rings of its own, so a
// frame received on one socket can be transmitted on another as it is. It
// is not safe for concurrent use: one worker owns it and its sockets.
type UMEM struct {
	mem       []byte
	frameSize uint64
	numFrames int
	ringSize  int
	copyMode  bool
	free      []uint64 // LIFO: the most recently used frame is the warmest
	owner     *Socket  // the socket the memory is registered with
	sockets   []*Socket
}

// NewUMEM maps o.NumFrames frames of o.FrameSize bytes.
func NewUMEM(o Options) (*UMEM, error) {
	if o.NumFrames == 0 {
		o = DefaultOptions
	}
	for _, v := range []int{o.FrameSize, o.RingSize} {
		if v <= 0 || v&(v-1) != 0 {
			return nil, fmt.Errorf("xsk options %+v: sizes must be powers of two", o)
		}
	}
	if o.FrameSize < 2048 || o.FrameSize > 4096 {
		return nil, fmt.Errorf("xsk frame size %d: want 2048 or 4096", o.FrameSize)
	}
	if o.NumFrames < 4 {
		return nil, fmt.Errorf("xsk: %d frames: want at least 4", o.NumFrames)
	}
	mem, err := unix.Mmap(-1, 0, o.NumFrames*o.FrameSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap umem of %d frames: %w", o.NumFrames, err)
	}
	u := &UMEM{mem: mem, frameSize: uint64(o.FrameSize), numFrames: o.NumFrames, ringSize: o.RingSize, copyMode: o.Copy,
		free: make([]uint64, 0, o.NumFrames)}
	for i := o.NumFrames - 1; i >= 0; i-- {
		u.free = append(u.free, uint64(i)*u.frameSize)
	}
	return u, nil
}

// Open creates a socket bound to ifindex/queue on this UMEM: the first one
// registers the memory, trying zero-copy before copy mode (unless
// Options.Copy); the others share it and run in the first one's mode. A
// socket the kernel will not let share the memory (a device without
// zero-copy when the first one has it) gets a UMEM of its own: its UMEMID
// differs from the others', and frames crossing to it are copied.
func (u *UMEM) Open(ifindex, queue int) (*Socket, error) {
	if u.owner == nil {
		s, err := u.openOwner(ifindex, queue)
		if err != nil {
			return nil, err
		}
		u.owner = s
		u.add(s)
		return s, nil
	}
	s, err := open(u, ifindex, queue, unix.XDP_SHARED_UMEM, u.owner.fd)
	if err != nil {
		// Its own memory, in whatever mode its device allows.
		own, oerr := Open(ifindex, queue, Options{NumFrames: u.numFrames, FrameSize: int(u.frameSize),
			RingSize: u.ringSize, Copy: u.copyMode})
		if oerr != nil {
			return nil, fmt.Errorf("shared umem: %w; own umem: %w", err, oerr)
		}
		own.shareError = err.Error()
		return own, nil
	}
	u.add(s)
	return s, nil
}

func (u *UMEM) openOwner(ifindex, queue int) (*Socket, error) {
	if !u.copyMode {
		s, err := open(u, ifindex, queue, unix.XDP_ZEROCOPY|unix.XDP_USE_NEED_WAKEUP, 0)
		if err == nil {
			return s, nil
		}
		// The driver (veth, generic XDP, ...) has no zero-copy: copy mode.
		zcErr := err
		if s, err = open(u, ifindex, queue, unix.XDP_COPY|unix.XDP_USE_NEED_WAKEUP, 0); err != nil {
			return nil, fmt.Errorf("zero-copy: %w; copy: %w", zcErr, err)
		}
		s.zeroCopyError = zcErr.Error()
		return s, nil
	}
	return open(u, ifindex, queue, unix.XDP_COPY|unix.XDP_USE_NEED_WAKEUP, 0)
}

// add registers s and shares the frames out: each socket's fill ring holds
// at most half its share, the rest stays free for transmitting.
func (u *UMEM) add(s *Socket) {
	u.sockets = append(u.sockets, s)
	for _, x := range u.sockets {
		x.fillMax = min(u.ringSize, u.numFrames/(2*len(u.sockets)))
	}
	s.refill()
}

// FreeFrames is how many frames are free (neither in a ring nor held).
func (u *UMEM) FreeFrames() int { return len(u.free) }

// NumFrames is the UMEM's size in frames.
func (u *UMEM) NumFrames() int { return u.numFrames }

func (u *UMEM) release(addr uint64) { u.free = append(u.free, addr&^(u.frameSize-1)) }

func (u *UMEM) alloc() (uint64, bool) {
	n := len(u.free)
	if n == 0 {
		return 0, false
	}
	a := u.free[n-1]
	u.free = u.free[:n-1]
	return a, true
}

// Close unmaps the memory; close its sockets first.
func (u *UMEM) Close() error {
	if u.mem == nil {
		return nil
	}
	err := unix.Munmap(u.mem)
	u.mem = nil
	return err
}

func (u *UMEM) ptr() unsafe.Pointer { return unsafe.Pointer(u) }

// audit checks frame accounting: every frame is exactly once either free,
// in a socket's fill ring, received and not yet taken, in a TX ring or in
// a completion ring. Call it between batches (frames the caller holds are
// passed as held).
func (u *UMEM) audit(held ...uint64) error {
	seen := make(map[uint64]string, u.numFrames)
	note := func(addr uint64, where string) error {
		a := addr &^ (u.frameSize - 1)
		if a >= uint64(u.numFrames)*u.frameSize {
			return fmt.Errorf("frame %#x (%s) is outside the UMEM", addr, where)
		}
		if w, dup := seen[a]; dup {
			return fmt.Errorf("frame %#x is both %s and %s", a, w, where)
		}
		seen[a] = where
		return nil
	}
	var errs []error
	for _, a := range u.free {
		errs = append(errs, note(a, "free"))
	}
	for _, a := range held {
		errs = append(errs, note(a, "held"))
	}
	for i, s := range u.sockets {
		where := func(ring string) string { return fmt.Sprintf("in socket %d's %s ring", i, ring) }
		for k := atomicLoad(s.fill.consumer); k != s.fill.cached; k++ {
			errs = append(errs, note(*s.fill.addr(k), where("fill")))
		}
		for k := s.rx.cached; k != atomicLoad(s.rx.producer); k++ {
			errs = append(errs, note(s.rx.desc(k).Addr, where("rx")))
		}
		for k := atomicLoad(s.tx.consumer); k != s.tx.cached; k++ {
			errs = append(errs, note(s.tx.desc(k).Addr, where("tx")))
		}
		for k := s.comp.cached; k != atomicLoad(s.comp.producer); k++ {
			errs = append(errs, note(*s.comp.addr(k), where("completion")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(seen) != u.numFrames {
		return fmt.Errorf("%d of %d frames accounted for: %d leaked", len(seen), u.numFrames, u.numFrames-len(seen))
	}
	return nil
}
