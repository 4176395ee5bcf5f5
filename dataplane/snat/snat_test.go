package snat

import (
	"sync"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

var (
	s1, s2 = packet.Addr4([]byte{10, 0, 2, 100}), packet.Addr4([]byte{10, 0, 2, 101})
	b1     = Backend{Addr: packet.Addr4([]byte{10, 0, 2, 11}), Port: 80, Proto: ipproto.TCP}
	b2     = Backend{Addr: packet.Addr4([]byte{10, 0, 2, 12}), Port: 80, Proto: ipproto.TCP}
)

type sp struct {
	a packet.Addr
	p uint16
}

// Every port of the range, per backend, once; then exhaustion; a freed
// port comes back.
func TestPerBackendRangeAndExhaustion(t *testing.T) {
	a := New([]packet.Addr{s1}, 1000, 1199) // 200 ports, not a multiple of 64
	seen := map[sp]bool{}
	for i := 0; i < 200; i++ {
		addr, port, ok := a.Alloc(b1, nil)
		if !ok || addr != s1 || port < 1000 || port > 1199 || seen[sp{addr, port}] {
			t.Fatalf("alloc %d: %v %d %v (seen %v)", i, addr, port, ok, seen[sp{addr, port}])
		}
		seen[sp{addr, port}] = true
	}
	if _, _, ok := a.Alloc(b1, nil); ok {
		t.Fatal("allocated past the range")
	}
	if _, _, ok := a.Alloc(b2, nil); !ok {
		t.Fatal("another backend has its own range")
	}
	a.Free(s1, 1042, b1)
	a.Free(s1, 80, b1)                                 // outside the range: ignored
	a.Free(packet.Addr4([]byte{1, 0, 0, 0}), 1043, b1) // not ours: ignored
	if addr, port, ok := a.Alloc(b1, nil); !ok || addr != s1 || port != 1042 {
		t.Fatalf("freed port not reused: %v %d %v", addr, port, ok)
	}
	if a.InUse() != 201 {
		t.Fatalf("in use %d", a.InUse())
	}
}

// Two addresses double what one backend can take.
func TestAddressesAddUp(t *testing.T) {
	a := New([]packet.Addr{s1, s2}, 2000, 2009)
	per := map[packet.Addr]int{}
	for i := 0; i < 20; i++ {
		addr, _, ok := a.Alloc(b1, nil)
		if !ok {
			t.Fatalf("alloc %d failed", i)
		}
		per[addr]++
	}
	if per[s1] != 10 || per[s2] != 10 {
		t.Fatalf("%v", per)
	}
	if _, _, ok := a.Alloc(b1, nil); ok {
		t.Fatal("past both ranges")
	}
	var none *Allocator
	if _, _, ok := none.Alloc(b1, nil); ok || none.Owns(s1) {
		t.Fatal("a nil allocator allocated")
	}
}

func TestConcurrentAllocsAreDistinct(t *testing.T) {
	a := New([]packet.Addr{s1}, 1024, 65535)
	var mu sync.Mutex
	seen := map[uint16]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				_, p, ok := a.Alloc(b1, nil)
				mu.Lock()
				if !ok || seen[p] {
					t.Errorf("alloc: %d %v dup=%v", p, ok, seen[p])
				}
				seen[p] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func BenchmarkAlloc(b *testing.B) {
	a := New([]packet.Addr{s1}, 1024, 65535)
	for b.Loop() {
		_, p, ok := a.Alloc(b1, nil)
		if !ok {
			b.Fatal("full")
		}
		a.Free(s1, p, b1)
	}
}

// accept narrows the ports (conntrack wants the port in the client's shard).
func TestAccept(t *testing.T) {
	a := New([]packet.Addr{s1}, 1000, 1099)
	even := func(_ packet.Addr, p uint16) bool { return p%2 == 0 }
	for i := 0; i < 50; i++ {
		if _, p, ok := a.Alloc(b1, even); !ok || p%2 != 0 {
			t.Fatalf("alloc %d: %d %v", i, p, ok)
		}
	}
	if _, _, ok := a.Alloc(b1, even); ok {
		t.Fatal("no even port is left")
	}
	if _, p, ok := a.Alloc(b1, nil); !ok || p%2 != 1 {
		t.Fatalf("odd ports are free: %d %v", p, ok)
	}
}

func TestReserve(t *testing.T) {
	a := New([]packet.Addr{s1}, 1000, 1099)
	if !a.Reserve(s1, 1042, b1) || a.Reserve(s1, 1042, b1) {
		t.Fatal("reserve twice")
	}
	if !a.Reserve(s1, 1042, b2) { // another backend: another reply tuple
		t.Fatal("same port towards another backend refused")
	}
	if a.Reserve(s2, 1043, b1) || a.Reserve(s1, 999, b1) || a.Covers(s1, 1100) || !a.Covers(s1, 1099) {
		t.Fatal("reserved what is not ours")
	}
	for range 99 { // the other 99 ports of the range, then none
		if _, p, ok := a.Alloc(b1, nil); !ok || p == 1042 {
			t.Fatalf("alloc gave %d %v", p, ok)
		}
	}
	if _, _, ok := a.Alloc(b1, nil); ok {
		t.Fatal("a reserved port was handed out")
	}
	a.Free(s1, 1042, b1)
	if _, p, ok := a.Alloc(b1, nil); !ok || p != 1042 {
		t.Fatalf("freed reserved port: %d %v", p, ok)
	}
}
