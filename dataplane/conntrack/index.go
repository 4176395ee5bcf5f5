package conntrack

import (
	"sync/atomic"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// index is an open-addressing hash index (linear probing, backward-shift
// deletion, so no tombstones) from a tuple to an entry slot. A slot holds
// the top 32 bits of the tuple's hash (a tag) and entry+1 (0: empty), so a
// probe past another flow's slot reads no entry: at a million flows every
// entry read is a cache miss. A tuple's home position is taken from its
// tag's low bits, so a deletion shifting slots back finds their homes in
// the slots themselves, without reading their entries. It has twice as
// many slots as the shard has entries. Slots are written with atomic
// stores, under the shard's lock: prefetching workers read them without it
// (Table.PrefetchEntry).
type index struct {
	slots []uint64
	mask  uint64
}

// indexSize is the slot count for a shard of n entries.
func indexSize(n int) int {
	size := 1
	for size < 2*n {
		size <<= 1
	}
	return size
}

func (x *index) init(slots []uint64) {
	x.slots = slots
	x.mask = uint64(len(slots) - 1)
}

func slotOf(h uint64, i int32) uint64 { return h&^0xffffffff | uint64(uint32(i+1)) }

// home is where a probe for hash (or slot) h starts.
func (x *index) home(h uint64) uint64 { return h >> 32 & x.mask }

func (x *index) find(s *shard, h uint64, t *packet.Tuple, rev bool) int32 {
	tag := h &^ 0xffffffff
	for p := x.home(h); ; p = (p + 1) & x.mask {
		v := x.slots[p]
		if v == 0 {
			return -1
		}
		if v&^0xffffffff != tag {
			continue
		}
		i := int32(uint32(v)) - 1
		e := &s.entries[i]
		if rev {
			if e.Rev.Same(t) {
				return i
			}
		} else if e.Fwd.Same(t) {
			return i
		}
	}
}

func (x *index) insert(h uint64, i int32) {
	p := x.home(h)
	for x.slots[p] != 0 {
		p = (p + 1) & x.mask
	}
	atomic.StoreUint64(&x.slots[p], slotOf(h, i))
}

func (x *index) delete(h uint64, i int32) {
	want := slotOf(h, i)
	p := x.home(h)
	for x.slots[p] != want {
		if x.slots[p] == 0 {
			return
		}
		p = (p + 1) & x.mask
	}
	// Shift later members of the probe run back into the hole.
	hole := p
	for q := (p + 1) & x.mask; x.slots[q] != 0; q = (q + 1) & x.mask {
		home := x.home(x.slots[q])
		// Move q into hole if its home is not in (hole, q] cyclically.
		if (q-home)&x.mask >= (q-hole)&x.mask {
			atomic.StoreUint64(&x.slots[hole], x.slots[q])
			hole = q
		}
	}
	atomic.StoreUint64(&x.slots[hole], 0)
}
