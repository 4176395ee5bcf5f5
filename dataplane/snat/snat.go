// Package snat hands out full-NAT source ports: per (SNAT address, backend
// endpoint), so each address serves a whole port range to every backend,
// and a port of a live flow is never handed out twice.
package snat

import (
	"math/bits"
	"sync"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// Backend is the endpoint a flow is sent to; its reply tuple (backend ->
// SNAT address:port) must be unique, so ports are counted per backend.
type Backend struct {
	Addr  packet.Addr
	Port  uint16
	Proto ipproto.Proto
}

type key struct {
	snat int // index into addrs
	be   Backend
}

// Allocator is safe for concurrent use: workers allocate for new flows,
// conntrack frees when a flow's entry goes. Memory: one bit per port of the
// range for each (address, backend) pair in use (8 KiB for 1024-65535).
type Allocator struct {
	mu     sync.Mutex
	addrs  []packet.Addr
	lo, hi uint16
	used   map[key][]uint64
	next   uint32 // rotates the starting address and port
}

// New makes an allocator over addrs and the inclusive port range lo-hi.
func New(addrs []packet.Addr, lo, hi uint16) *Allocator {
	return &Allocator{addrs: addrs, lo: lo, hi: hi, used: map[key][]uint64{}}
}

// Alloc returns a SNAT address of the backend's family and a port for a
// new flow to be, one that
// accept takes (nil: any); ok is false when every address's range is in
// use for this backend, or holds no free port accept takes.
func (a *Allocator) Alloc(be Backend, accept func(packet.Addr, uint16) bool) (packet.Addr, uint16, bool) {
	if a == nil || len(a.addrs) == 0 {
		return packet.Addr{}, 0, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next = a.next*1664525 + 1013904223 // LCG: ports are not predictable in sequence
	n := int(a.hi-a.lo) + 1
	for i := range a.addrs {
		s := (int(a.next>>16) + i) % len(a.addrs)
		if a.addrs[s].Is4() != be.Addr.Is4() {
			continue // a flow keeps its address family
		}
		bm := a.bitmap(key{s, be}, n)
		addr := a.addrs[s]
		var ok func(int) bool
		if accept != nil {
			ok = func(i int) bool { return accept(addr, a.lo+uint16(i)) }
		}
		if p, found := take(bm, n, int(a.next)%n, ok); found {
			return addr, a.lo + uint16(p), true
		}
	}
	return packet.Addr{}, 0, false
}

// bitmap is k's port bitmap of n bits, made on first use; a.mu is held.
func (a *Allocator) bitmap(k key, n int) []uint64 {
	bm := a.used[k]
	if bm == nil {
		bm = make([]uint64, (n+63)/64)
		a.used[k] = bm
	}
	return bm
}

// take sets and returns the first clear bit at or after start that ok
// takes (nil: any), wrapping around to the bits before start.
func take(bm []uint64, n, start int, ok func(int) bool) (int, bool) {
	for _, r := range [2][2]int{{start, n}, {0, start}} {
		for i := r[0]; i < r[1]; {
			j, found := firstClear(bm, i, r[1])
			if !found {
				break
			}
			if ok == nil || ok(j) {
				bm[j/64] |= 1 << (j % 64)
				return j, true
			}
			i = j + 1
		}
	}
	return 0, false
}

// firstClear finds the first clear bit in [from, to), a word at a time.
func firstClear(bm []uint64, from, to int) (int, bool) {
	for i := from; i < to; i += 64 - i%64 {
		if w := ^bm[i/64] >> (i % 64); w != 0 {
			j := i + bits.TrailingZeros64(w)
			return j, j < to
		}
	}
	return 0, false
}

// Free returns a port; tuples that are not ours (not a SNAT address, or
// outside the range) are ignored, so conntrack can call it for every flow.
func (a *Allocator) Free(addr packet.Addr, port uint16, be Backend) {
	if a == nil || port < a.lo || port > a.hi {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for s, x := range a.addrs {
		if x != addr {
			continue
		}
		if bm := a.used[key{s, be}]; bm != nil {
			i := int(port - a.lo)
			bm[i/64] &^= 1 << (i % 64)
		}
	}
}

// Owns reports whether addr is one of the SNAT addresses.
func (a *Allocator) Owns(addr packet.Addr) bool {
	if a == nil {
		return false
	}
	for _, x := range a.addrs {
		if x == addr {
			return true
		}
	}
	return false
}

// InUse counts the ports in use over all addresses and backends.
func (a *Allocator) InUse() int {
	if a == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, bm := range a.used {
		for _, w := range bm {
			n += bits.OnesCount64(w)
		}
	}
	return n
}

// Covers reports whether addr:port is one this allocator hands out.
func (a *Allocator) Covers(addr packet.Addr, port uint16) bool {
	return a != nil && port >= a.lo && port <= a.hi && a.Owns(addr)
}

// Reserve marks addr:port in use towards be, for a flow restored from a
// snapshot; false when it is not ours or already in use.
func (a *Allocator) Reserve(addr packet.Addr, port uint16, be Backend) bool {
	if !a.Covers(addr, port) {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := int(a.hi-a.lo) + 1
	for s, x := range a.addrs {
		if x != addr {
			continue
		}
		bm := a.bitmap(key{s, be}, n)
		i := int(port - a.lo)
		if bm[i/64]&(1<<(i%64)) != 0 {
			return false
		}
		bm[i/64] |= 1 << (i % 64)
		return true
	}
	return false
}

// Addrs are the SNAT addresses, in the order given.
func (a *Allocator) Addrs() []packet.Addr {
	if a == nil {
		return nil
	}
	return a.addrs
}
