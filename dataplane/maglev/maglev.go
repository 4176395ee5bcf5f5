// Package maglev builds weighted Maglev lookup tables (Eisenbud et al., NSDI
// 2016): consistent hashing where removing one of N backends moves about 1/N
// of the flows, and every instance built from the same backends agrees.
package maglev

import "hash/fnv"

// Backend is one entry to place in the table. Key must identify the backend
// stably across instances and restarts (for example "10.0.2.11:80").
type Backend struct {
	Key    string
	Weight uint32 // 0: gets no slots (drained)
}

// sizes are the table sizes used: primes near powers of two, as Cilium
// offers. A table's size depends only on how many backends the service has
// (drained and unhealthy ones included), so draining never changes it; it
// steps up rarely, and only then does a new table move more than the share
// of the backend that changed.
var sizes = []int{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071, 262139, 524287}

// SlotsPerBackend is the minimum table size per backend. Balance needs
// about 100 (Eisenbud et al., Cilium); removing one backend moved up to 5%
// more flows than its share at 100 and under 2% from about 400
// (docs/benchmarks.md), so 400 it is.
const SlotsPerBackend = 400

// MaxBackends is the most backends a table can hold at SlotsPerBackend.
var MaxBackends = sizes[len(sizes)-1] / SlotsPerBackend

// SizeFor returns the smallest size of the list >= SlotsPerBackend*n; n
// above MaxBackends gets the largest.
func SizeFor(n int) int {
	for _, m := range sizes {
		if m >= SlotsPerBackend*n {
			return m
		}
	}
	return sizes[len(sizes)-1]
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// Table maps a flow hash to a backend index.
type Table struct {
	slots []uint16 // backend index, empty when no backend has weight
}

const empty = 0xffff

// Build fills a table of the given prime size. In each round every backend
// claims as many preferred slots as its weight divided by the smallest
// weight (rounded), which keeps the share of slots proportional to weight.
func Build(backends []Backend, size int) *Table {
	t := &Table{slots: make([]uint16, size)}
	for i := range t.slots {
		t.slots[i] = empty
	}
	var minW uint32
	for _, b := range backends {
		if b.Weight > 0 && (minW == 0 || b.Weight < minW) {
			minW = b.Weight
		}
	}
	if minW == 0 {
		return t
	}
	m := uint64(size)
	offset := make([]uint64, len(backends))
	skip := make([]uint64, len(backends))
	next := make([]uint64, len(backends))
	credit := make([]float64, len(backends))
	for i, b := range backends {
		offset[i] = hash(b.Key, 0x5bd1e995) % m
		skip[i] = hash(b.Key, 0x9e3779b9)%(m-1) + 1
	}
	filled := 0
	for filled < size {
		for i, b := range backends {
			if b.Weight == 0 {
				continue
			}
			// Fractional weights carry over to the next round.
			credit[i] += float64(b.Weight) / float64(minW)
			for credit[i] >= 1 && filled < size {
				credit[i]--
				for {
					c := (offset[i] + next[i]*skip[i]) % m
					next[i]++
					if t.slots[c] == empty {
						t.slots[c] = uint16(i)
						filled++
						break
					}
				}
			}
		}
	}
	return t
}

// Lookup returns the backend index for flow hash h, or -1 if the table has
// no backend with weight > 0.
func (t *Table) Lookup(h uint64) int {
	if s := t.slots[h%uint64(len(t.slots))]; s != empty {
		return int(s)
	}
	return -1
}

// Size is the number of slots.
func (t *Table) Size() int { return len(t.slots) }

func hash(key string, seed uint32) uint64 {
	h := fnv.New64a()
	var s [4]byte
	s[0], s[1], s[2], s[3] = byte(seed), byte(seed>>8), byte(seed>>16), byte(seed>>24)
	h.Write(s[:])
	h.Write([]byte(key))
	v := h.Sum64()
	v ^= v >> 33
	v *= 0xff51afd7ed558ccd
	v ^= v >> 33
	return v
}

// Fingerprint identifies the table's content: the backend, by key, that
// owns each slot (backends are the Build input). Instances whose tables
// send every flow to the same backend have equal fingerprints.
func (t *Table) Fingerprint(backends []Backend) uint64 {
	keys := make([]uint64, len(backends))
	for i, b := range backends {
		keys[i] = hash(b.Key, 0)
	}
	const prime = 0x100000001b3 // FNV-64
	f := uint64(0xcbf29ce484222325)
	for _, s := range t.slots {
		k := uint64(empty)
		if s != empty {
			k = keys[s]
		}
		f = (f ^ k) * prime
	}
	return f
}

// Moved is the share of the flow-hash space whose backend (by key) differs
// between two tables: what a change moves of new flows. Tables of one
// size are compared slot by slot; tables of two sizes (distinct primes)
// see independent slots for a uniform hash, so the share that stays is
// the sum over backends of both tables' shares of it. Slots without a
// backend count as a backend of their own ("none" to "none" moves nothing).
func Moved(old *Table, oldB []Backend, new *Table, newB []Backend) float64 {
	key := func(bs []Backend, s uint16) string {
		if s == empty {
			return "\x00none"
		}
		return bs[s].Key
	}
	if old.Size() == new.Size() {
		moved := 0
		for i, s := range old.slots {
			if key(oldB, s) != key(newB, new.slots[i]) {
				moved++
			}
		}
		return float64(moved) / float64(old.Size())
	}
	share := func(t *Table, bs []Backend) map[string]float64 {
		m := map[string]float64{}
		for _, s := range t.slots {
			m[key(bs, s)] += 1 / float64(t.Size())
		}
		return m
	}
	a, b := share(old, oldB), share(new, newB)
	stay := 0.0
	for k, p := range a {
		stay += p * b[k]
	}
	return max(0, 1-stay)
}
