// Package memhint tells the CPU and the kernel how memory will be used: a
// worker prefetches the lines of a batch's packets so that their misses
// overlap, and its large tables ask for huge pages, so that a lookup at a
// million flows does not miss the TLB as well as the cache.
package memhint

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// HugePages asks for transparent huge pages (madvise mode) for the 2
// MiB-aligned part of a large, not yet touched allocation. Best effort.
func HugePages(p unsafe.Pointer, size uintptr) {
	const huge = 2 << 20
	start := (uintptr(p) + huge - 1) &^ (huge - 1)
	end := (uintptr(p) + size) &^ (huge - 1)
	if end <= start {
		return
	}
	unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_HUGEPAGE)
}
