package conntrack

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// BenchmarkMemoryPerEntry allocates a 1M-flow table and reports its heap
// bytes per flow (entries plus both indexes at twice the entry count).
func BenchmarkMemoryPerEntry(b *testing.B) {
	const n = 1 << 20
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tb := New(n, DefaultTimeouts)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(tb.Capacity()), "bytes/entry")
		runtime.KeepAlive(tb)
	}
	b.ReportMetric(float64(unsafe.Sizeof(Entry{})), "entry-struct-bytes")
}

func BenchmarkInsertEvict(b *testing.B) {
	tb := New(1<<16, DefaultTimeouts)
	i := uint32(0)
	for b.Loop() {
		i++
		fwd, rev := flow(i, uint16(i))
		tb.Insert(fwd, rev, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagSYN), 60, int64(i))
	}
}

func BenchmarkForwardHit(b *testing.B) {
	tb := New(1<<20, DefaultTimeouts)
	const flows = 1 << 19 // half full, beyond the CPU caches
	for i := uint32(0); i < flows; i++ {
		fwd, rev := flow(i, uint16(i))
		tb.Insert(fwd, rev, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagSYN), 60, 0)
	}
	i := uint32(0)
	for b.Loop() {
		i = (i + 7919) % flows
		fwd, _ := flow(i, uint16(i))
		if _, ok := tb.Forward(fwd, sg(flagACK), 60, 1); !ok {
			b.Fatal("miss")
		}
	}
}
