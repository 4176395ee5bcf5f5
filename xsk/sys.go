package xsk

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The AF_XDP socket options golang.org/x/sys/unix has constants and types
// for but no wrappers.

func setsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), size, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func getsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	n := uint32(size)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p),
		uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// registerUMEM registers mem, cut in frames of frameSize, with socket fd.
func registerUMEM(fd int, mem []byte, frameSize int) error {
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&mem[0]))), Len: uint64(len(mem)), Size: uint32(frameSize)}
	if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return fmt.Errorf("setsockopt XDP_UMEM_REG: %w", err)
	}
	return nil
}

// setRingSizes sizes the socket's fill, completion, RX and TX rings.
func setRingSizes(fd, n int) error {
	for _, opt := range []struct {
		opt  int
		name string
	}{{unix.XDP_UMEM_FILL_RING, "fill"}, {unix.XDP_UMEM_COMPLETION_RING, "completion"},
		{unix.XDP_RX_RING, "rx"}, {unix.XDP_TX_RING, "tx"}} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, opt.opt, n); err != nil {
			return fmt.Errorf("setsockopt %s ring size %d: %w", opt.name, n, err)
		}
	}
	return nil
}

func mmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	if err := getsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return off, fmt.Errorf("getsockopt XDP_MMAP_OFFSETS: %w", err)
	}
	return off, nil
}

// zeroCopy asks the kernel whether the bound socket runs in zero-copy mode.
func zeroCopy(fd int) (bool, error) {
	var opts struct{ flags uint32 }
	if err := getsockopt(fd, unix.XDP_OPTIONS, unsafe.Pointer(&opts), unsafe.Sizeof(opts)); err != nil {
		return false, fmt.Errorf("getsockopt XDP_OPTIONS: %w", err)
	}
	return opts.flags&unix.XDP_OPTIONS_ZEROCOPY != 0, nil
}

func statistics(fd int) (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	if err := getsockopt(fd, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st)); err != nil {
		return st, fmt.Errorf("getsockopt XDP_STATISTICS: %w", err)
	}
	return st, nil
}
