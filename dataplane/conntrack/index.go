package conntrack

import "github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"

// index is an open-addressing hash index (linear probing, backward-shift
// deletion, so no tombstones) from a tuple to an entry slot. Slots hold
// entry+1; 0 is empty. It has twice as many slots as the shard has entries.
type index struct {
	slots []int32
	mask  uint64
}

func (x *index) init(entries int) {
	n := 1
	for n < 2*entries {
		n <<= 1
	}
	x.slots = make([]int32, n)
	x.mask = uint64(n - 1)
}

func key(s *shard, i int32, rev bool) (packet.Tuple, uint64) {
	e := &s.entries[i]
	if rev {
		return e.Rev, e.revHash
	}
	return e.Fwd, e.fwdHash
}

func (x *index) find(s *shard, h uint64, t *packet.Tuple, rev bool) int32 {
	for p := h & x.mask; ; p = (p + 1) & x.mask {
		v := x.slots[p]
		if v == 0 {
			return -1
		}
		e := &s.entries[v-1]
		if rev {
			if e.revHash == h && e.Rev == *t {
				return v - 1
			}
		} else if e.fwdHash == h && e.Fwd == *t {
			return v - 1
		}
	}
}

func (x *index) insert(h uint64, i int32) {
	p := h & x.mask
	for x.slots[p] != 0 {
		p = (p + 1) & x.mask
	}
	x.slots[p] = i + 1
}

func (x *index) delete(s *shard, h uint64, i int32, rev bool) {
	p := h & x.mask
	for x.slots[p] != i+1 {
		if x.slots[p] == 0 {
			return
		}
		p = (p + 1) & x.mask
	}
	// Shift later members of the probe run back into the hole.
	hole := p
	for q := (p + 1) & x.mask; x.slots[q] != 0; q = (q + 1) & x.mask {
		_, kh := key(s, x.slots[q]-1, rev)
		home := kh & x.mask
		// Move q into hole if its home is not in (hole, q] cyclically.
		if (q-home)&x.mask >= (q-hole)&x.mask {
			x.slots[hole] = x.slots[q]
			hole = q
		}
	}
	x.slots[hole] = 0
}
