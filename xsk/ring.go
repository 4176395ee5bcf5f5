package xsk

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is a view of one mmapped AF_XDP ring. The kernel and this process
// each own one of producer/consumer; the other is only read.
type ring struct {
	mem      []byte
	producer *uint32
	consumer *uint32
	flags    *uint32
	descs    unsafe.Pointer
	mask     uint32
	cached   uint32 // last index we wrote (our producer or consumer)
}

func mapRing(fd int, pgoff int64, off unix.XDPRingOffset, n int, descSize uintptr) (*ring, error) {
	size := int(off.Desc) + n*int(descSize)
	mem, err := unix.Mmap(fd, pgoff, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap ring at pgoff %#x: %w", pgoff, err)
	}
	base := unsafe.Pointer(&mem[0])
	return &ring{
		mem:      mem,
		producer: (*uint32)(unsafe.Add(base, off.Producer)),
		consumer: (*uint32)(unsafe.Add(base, off.Consumer)),
		flags:    (*uint32)(unsafe.Add(base, off.Flags)),
		descs:    unsafe.Add(base, off.Desc),
		mask:     uint32(n - 1),
	}, nil
}

func (r *ring) unmap() error {
	if r == nil || r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	return err
}

func (r *ring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.descs, uintptr(i&r.mask)*8))
}

func (r *ring) desc(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.descs, uintptr(i&r.mask)*unsafe.Sizeof(unix.XDPDesc{})))
}

// Producer side (fill, tx): free slots, then publish.
func (r *ring) free() uint32 {
	return r.mask + 1 - (r.cached - atomic.LoadUint32(r.consumer))
}

func (r *ring) publish() { atomic.StoreUint32(r.producer, r.cached) }

// pending is how many entries the producer has published that the kernel
// (the consumer) has not taken yet.
func (r *ring) pending() uint32 { return r.cached - atomic.LoadUint32(r.consumer) }

// Consumer side (rx, completion): available entries, then release.
func (r *ring) available() uint32 { return atomic.LoadUint32(r.producer) - r.cached }

func (r *ring) release() { atomic.StoreUint32(r.consumer, r.cached) }

// needsWakeup is the kernel's XDP_RING_NEED_WAKEUP flag on the ring: it
// waits for a syscall (sendto for TX, recvfrom or poll for fill).
func (r *ring) needsWakeup() bool {
	return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0
}

func atomicLoad(p *uint32) uint32 { return atomic.LoadUint32(p) }
