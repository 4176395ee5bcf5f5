package conntrack

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/memhint"
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
	tb := halfFull()
	i := uint32(0)
	for b.Loop() {
		i = (i + 7919) % flows
		fwd, _ := flow(i, uint16(i))
		if _, ok := tb.Forward(fwd, sg(flagACK), 60, 1); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkForwardHitPrefetched is BenchmarkForwardHit in batches of 64,
// each prefetched as a worker does with a large table.
func BenchmarkForwardHitPrefetched(b *testing.B) {
	tb := halfFull()
	var batch [64]packet.Tuple
	var probes [64]Probe
	i := uint32(0)
	for b.Loop() {
		for k := range batch {
			i = (i + 7919) % flows
			batch[k], _ = flow(i, uint16(i))
			probes[k] = tb.PrefetchSlot(&batch[k], false)
		}
		for _, p := range probes {
			tb.PrefetchEntry(p)
		}
		for k := range batch {
			if _, ok := tb.Forward(batch[k], sg(flagACK), 60, 1); !ok {
				b.Fatal("miss")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/lookup")
}

func BenchmarkForwardHitPipelined(b *testing.B) {
	tb := halfFull()
	for _, d := range [][2]int{{4, 8}, {8, 16}, {12, 24}, {16, 32}} {
		b.Run(fmt.Sprint(d), func(b *testing.B) {
			var batch [64]packet.Tuple
			var probes [64]Probe
			i := uint32(0)
			d1, d2 := d[0], d[1]
			for b.Loop() {
				for k := range batch {
					i = (i + 7919) % flows
					batch[k], _ = flow(i, uint16(i))
				}
				for k := 0; k < 64+d2; k++ {
					if k < 64 {
						probes[k] = tb.PrefetchSlot(&batch[k], false)
					}
					if j := k - d1; j >= 0 && j < 64 {
						tb.PrefetchEntry(probes[j])
					}
					if j := k - d2; j >= 0 && j < 64 {
						if _, ok := tb.Forward(batch[j], sg(flagACK), 60, 1); !ok {
							b.Fatal("miss")
						}
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/lookup")
		})
	}
}

// flows is how many flows halfFull tracks.
const flows = 1 << 19

// halfFull is a 1M-flow table half full: beyond the CPU caches.
func halfFull() *Table {
	tb := New(1<<20, DefaultTimeouts)
	for i := uint32(0); i < flows; i++ {
		fwd, rev := flow(i, uint16(i))
		tb.Insert(fwd, rev, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagSYN), 60, 0)
	}
	return tb
}

// BenchmarkSnapshot writes and restores a table of 1M flows (in memory,
// no file): the cost a restart adds at that size.
func BenchmarkSnapshot(b *testing.B) {
	const n = 1 << 20
	tb := New(2*n, DefaultTimeouts)
	for i := uint32(0); i < n; i++ {
		fwd, rev := flow(i, uint16(1024+i>>16))
		tb.Insert(fwd, rev, NewFlow{Backend: 1}, sg(flagSYN), 60, 1)
	}
	var buf bytes.Buffer
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			buf.Reset()
			if _, err := tb.WriteSnapshot(&buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len())/n, "bytes/flow")
	})
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			fresh := New(2*n, DefaultTimeouts)
			b.StartTimer()
			if r, _, err := fresh.Restore(bytes.NewReader(buf.Bytes()), 2, nil); err != nil || r != n {
				b.Fatalf("restored %d: %v", r, err)
			}
		}
	})
}

// BenchmarkRandomLines is what this machine charges for the memory a
// lookup in a large table reads: random 64-byte lines of a region as
// large as the 1M-flow benchmark's table, in huge pages where the kernel
// gives them (as New asks) or in 4 KiB pages, loaded one after another
// (each address depends on the line before: a lookup without prefetch)
// or independently (the addresses known ahead: a prefetched batch). ns/op
// is per line. A small region shows the cost of a smaller table. And
// pipelined-pairs: per packet, two lines the second of which the first
// names, over a pipelined batch (see pipelinedPairs).
func BenchmarkRandomLines(b *testing.B) {
	for _, mib := range []int{8, 512} {
		for _, huge := range []bool{true, false} {
			region := make([]line, mib<<20/64)
			if huge {
				memhint.HugePages(unsafe.Pointer(unsafe.SliceData(region)), uintptr(len(region))*64)
			}
			for i := range region {
				region[i][0] = uint64(i) // touched once, so no load meets a page fault
			}
			n := uint64(len(region))
			pages := "4k"
			if huge {
				pages = "huge"
			}
			b.Run(fmt.Sprintf("MiB=%d/pages=%s/dependent", mib, pages), func(b *testing.B) {
				x, j := uint64(1), uint64(0)
				for b.Loop() {
					x = x*6364136223846793005 + 1442695040888963407
					j = region[(x>>20^j&1)%n][0]
				}
				sink = j
			})
			b.Run(fmt.Sprintf("MiB=%d/pages=%s/independent", mib, pages), func(b *testing.B) {
				x, sum := uint64(1), uint64(0)
				for b.Loop() {
					x = x*6364136223846793005 + 1442695040888963407
					sum += region[(x>>20)%n][0]
				}
				sink = sum
			})
			if mib == 512 && huge {
				b.Run("MiB=512/pages=huge/pipelined-pairs", func(b *testing.B) { pipelinedPairs(b, region) })
			}
			runtime.KeepAlive(region)
		}
	}
}

// pipelinedPairs is what a packet costs that needs two lines, the second
// named by the first (a per-flow record, then the generation it names),
// over a batch pipelined as the worker's Large path is: the first lines
// asked for 16 packets ahead, the second 8 ahead, both written when the
// packet's turn comes. ns/op is per packet: the memory floor of such a
// design, without its instructions.
func pipelinedPairs(b *testing.B, region []line) {
	n := uint64(len(region))
	var first, second [64]uint64
	x, sum := uint64(1), uint64(0)
	for done := 0; done < b.N; done += len(first) {
		for k := range first {
			x = x*6364136223846793005 + 1442695040888963407
			first[k] = x >> 20 % n
		}
		for k := 0; k < len(first)+16; k++ {
			if k < len(first) {
				sum += region[first[k]][0]
			}
			if j := k - 8; j >= 0 && j < len(first) {
				second[j] = region[first[j]][0] * 0x9e3779b97f4a7c15 >> 20 % n
				sum += region[second[j]][1]
			}
			if j := k - 16; j >= 0 {
				region[first[j]][2]++
				region[second[j]][3]++
			}
		}
	}
	sink = sum
}

// line is a cache line's worth of memory, for BenchmarkRandomLines.
type line [8]uint64

// sink keeps BenchmarkRandomLines' loads from being optimised away.
var sink uint64
