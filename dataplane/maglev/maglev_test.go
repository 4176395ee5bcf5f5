package maglev

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func backends(n int) []Backend {
	var bs []Backend
	for i := range n {
		bs = append(bs, Backend{Key: fmt.Sprintf("10.0.2.%d:80", 10+i), Weight: 1})
	}
	return bs
}

func share(t *Table, n int) []float64 {
	c := make([]float64, n)
	for _, s := range t.slots {
		c[s]++
	}
	for i := range c {
		c[i] /= float64(len(t.slots))
	}
	return c
}

func TestSizeIsPrimeAndLarge(t *testing.T) {
	for _, m := range sizes {
		if !isPrime(m) {
			t.Errorf("size %d is not prime", m)
		}
	}
	for n, want := range map[int]int{0: 251, 1: 509, 2: 1021, 3: 2039, 5: 2039, 10: 4093, 1024: 524287, 5000: 524287} {
		if m := SizeFor(n); m != want || (n <= MaxBackends && m < SlotsPerBackend*n) {
			t.Errorf("SizeFor(%d) = %d, want %d", n, m, want)
		}
	}
	if MaxBackends < 1024 {
		t.Errorf("MaxBackends %d is below MAX_BACKENDS_PER_SERVICE", MaxBackends)
	}
}

func TestEvenSpread(t *testing.T) {
	tb := Build(backends(3), SizeFor(3))
	for i, s := range share(tb, 3) {
		if math.Abs(s-1.0/3) > 0.01 {
			t.Errorf("backend %d has share %.4f", i, s)
		}
	}
}

func TestWeights(t *testing.T) {
	bs := []Backend{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 5}}
	tb := Build(bs, SizeFor(len(bs)))
	for i, s := range share(tb, len(bs)) {
		want := float64(bs[i].Weight) / 11
		if math.Abs(s-want)/want > 0.05 {
			t.Errorf("backend %s share %.4f want %.4f", bs[i].Key, s, want)
		}
	}
}

func TestZeroWeightGetsNothing(t *testing.T) {
	bs := backends(3)
	bs[1].Weight = 0
	tb := Build(bs, SizeFor(3))
	for _, s := range tb.slots {
		if s == 1 || s == empty {
			t.Fatalf("slot owned by %d", s)
		}
	}
	if Build([]Backend{{"x", 0}}, 7).Lookup(3) != -1 {
		t.Fatal("table with no weight must return -1")
	}
}

func TestRemovalDisruption(t *testing.T) {
	const n = 5
	bs := backends(n)
	before := Build(bs, SizeFor(n))
	after := Build(append(append([]Backend{}, bs[:2]...), bs[3:]...), SizeFor(n))
	moved := 0
	for i := range before.slots {
		old := bs[before.slots[i]].Key
		if old == bs[2].Key {
			continue // flows of the removed backend must move
		}
		idx := after.slots[i]
		if idx >= 2 {
			idx++ // index shift after removing bs[2]
		}
		if bs[idx].Key != old {
			moved++
		}
	}
	frac := float64(moved) / float64(len(before.slots))
	if frac > 0.02 {
		t.Fatalf("%.4f of the surviving backends' slots moved", frac)
	}
}

func TestStableAcrossInstances(t *testing.T) {
	a, b := Build(backends(4), SizeFor(4)), Build(backends(4), SizeFor(4))
	for i := range a.slots {
		if a.slots[i] != b.slots[i] {
			t.Fatal("two builds differ")
		}
	}
}

// TestRemovalMovesAtMostOneNth is the acceptance bound: removing one of N
// equal backends moves at most 1/N + 2% of flows. The removed backend's
// own flows have to move and nothing else should, so with weights the bound
// is its weighted share + 2% (which is 1/N + 2% when weights are equal).
func TestRemovalMovesAtMostOneNth(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	flows := make([]uint64, 100000)
	for i := range flows {
		flows[i] = r.Uint64()
	}
	for _, n := range []int{3, 5, 10} {
		for _, weighted := range []bool{false, true} {
			bs := backends(n)
			if weighted {
				for i := range bs {
					bs[i].Weight = uint32(1 + i%3)
				}
			}
			for victim := 0; victim < n; victim++ {
				before := Build(bs, SizeFor(n))
				rest := append(append([]Backend{}, bs[:victim]...), bs[victim+1:]...)
				after := Build(rest, SizeFor(n))
				moved := 0
				for _, h := range flows {
					if bs[before.Lookup(h)].Key != rest[after.Lookup(h)].Key {
						moved++
					}
				}
				frac := float64(moved) / float64(len(flows))
				var total uint32
				for _, b := range bs {
					total += b.Weight
				}
				if limit := float64(bs[victim].Weight)/float64(total) + 0.02; frac > limit {
					t.Errorf("n=%d weighted=%v remove %d: %.4f of flows moved, limit %.4f", n, weighted, victim, frac, limit)
				}
			}
		}
	}
}

// The fingerprint is equal exactly when the tables map slots to the same
// backends.
func TestFingerprint(t *testing.T) {
	bs := backends(4)
	a := Build(bs, SizeFor(4))
	if a.Fingerprint(bs) != Build(backends(4), SizeFor(4)).Fingerprint(backends(4)) {
		t.Fatal("equal tables, different fingerprints")
	}
	for name, other := range map[string]func() ([]Backend, *Table){
		"a weight":          func() ([]Backend, *Table) { o := backends(4); o[1].Weight = 2; return o, Build(o, SizeFor(4)) },
		"a backend gone":    func() ([]Backend, *Table) { o := backends(4); o[3].Weight = 0; return o, Build(o, SizeFor(4)) },
		"another address":   func() ([]Backend, *Table) { o := backends(4); o[0].Key = "10.0.3.1:80"; return o, Build(o, SizeFor(4)) },
		"another size":      func() ([]Backend, *Table) { o := backends(4); return o, Build(o, 509) },
		"no backend at all": func() ([]Backend, *Table) { o := backends(4); return o, Build(nil, SizeFor(4)) },
	} {
		o, tb := other()
		if tb.Fingerprint(o) == a.Fingerprint(bs) {
			t.Errorf("%s: same fingerprint", name)
		}
	}
}

func TestMoved(t *testing.T) {
	bs := func(keys ...string) []Backend {
		var out []Backend
		for _, k := range keys {
			out = append(out, Backend{Key: k, Weight: 1})
		}
		return out
	}
	two, three := bs("a", "b"), bs("a", "b", "c")
	const m = 4093
	t2, t3 := Build(two, m), Build(three, m)
	if got := Moved(t2, two, t2, two); got != 0 {
		t.Fatalf("same table: %v", got)
	}
	// A third backend takes about a third of the space, and Maglev moves
	// little more than that.
	if got := Moved(t2, two, t3, three); got < 0.30 || got > 0.40 {
		t.Fatalf("adding 1 of 3: %v", got)
	}
	drained := bs("a", "b")
	drained[1].Weight = 0
	if got := Moved(t2, two, Build(drained, m), drained); got < 0.45 || got > 0.55 {
		t.Fatalf("draining 1 of 2: %v", got)
	}
	// Sizes differ: the independence formula. Two equal backends in both
	// tables, spread evenly: half the space keeps its backend.
	if got := Moved(t2, two, Build(two, 8191), two); got < 0.49 || got > 0.51 {
		t.Fatalf("two sizes: %v", got)
	}
	empty := Build(nil, m)
	if got := Moved(empty, nil, empty, nil); got != 0 {
		t.Fatalf("no backends: %v", got)
	}
	if got := Moved(empty, nil, t2, two); got != 1 {
		t.Fatalf("from none: %v", got)
	}
}
