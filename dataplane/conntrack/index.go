package conntrack

import (
	"sync/atomic"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// index is an open-addressing hash index (linear probing, backward-shift
// deletion, so no tombstones) from a tuple to an entry slot. A slot holds
// the top 32 bits of the tuple's hash (a tag) and entry+1 (0: empty), so a
// probe past another flow's slot reads no entry: at a million flows every
// entry read is a cache miss. It has twice as many slots as the shard has
// entries. Slots are written with atomic stores, under the shard's lock:
// prefetching workers read them without it (Table.PrefetchEntry).
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

func key(s *shard, i int32, rev bool) (packet.Tuple, uint64) {
	e := &s.entries[i]
	if rev {
		return e.Rev, e.revHash
	}
	return e.Fwd, e.fwdHash
}

func (x *index) find(s *shard, h uint64, t *packet.Tuple, rev bool) int32 {
	tag := h &^ 0xffffffff
	for p := h & x.mask; ; p = (p + 1) & x.mask {
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
			if e.Rev == *t {
				return i
			}
		} else if e.Fwd == *t {
			return i
		}
	}
}

func (x *index) insert(h uint64, i int32) {
	p := h & x.mask
	for x.slots[p] != 0 {
		p = (p + 1) & x.mask
	}
	atomic.StoreUint64(&x.slots[p], slotOf(h, i))
}

func (x *index) delete(s *shard, h uint64, i int32, rev bool) {
	want := slotOf(h, i)
	p := h & x.mask
	for x.slots[p] != want {
		if x.slots[p] == 0 {
			return
		}
		p = (p + 1) & x.mask
	}
	// Shift later members of the probe run back into the hole.
	hole := p
	for q := (p + 1) & x.mask; x.slots[q] != 0; q = (q + 1) & x.mask {
		_, kh := key(s, int32(uint32(x.slots[q]))-1, rev)
		home := kh & x.mask
		// Move q into hole if its home is not in (hole, q] cyclically.
		if (q-home)&x.mask >= (q-hole)&x.mask {
			atomic.StoreUint64(&x.slots[hole], x.slots[q])
			hole = q
		}
	}
	atomic.StoreUint64(&x.slots[hole], 0)
}
