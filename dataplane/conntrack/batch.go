package conntrack

import (
	"sync/atomic"
	"unsafe"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/memhint"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// Prefetching for a batch. At a million flows each lookup misses the CPU
// caches twice in a row (the index slot, then the entry it names), and a
// worker handling a batch one packet after another waits for every miss
// in turn. A worker with a large table first asks for all the batch's
// index slots, then for the entries they name, and only then handles the
// packets: the misses overlap instead of adding up.

// LargeFlows is the table size from which Prefetch pays: beyond what the
// CPU caches hold of entries and index.
const LargeFlows = 1 << 15

// Large reports whether the table holds LargeFlows flows or more.
func (t *Table) Large() bool { return t.count.Load() >= LargeFlows }

// Probe is where a packet's flow would be in the table.
type Probe struct {
	shard uint32
	rev   bool
	pos   uint64
	tag   uint64
}

// PrefetchSlot starts loading the index slot of tup's flow (reply: a
// backend's packet, looked up by the reverse tuple) and returns where it is.
func (t *Table) PrefetchSlot(tup *packet.Tuple, reply bool) Probe {
	si := t.shardFor(tup, reply)
	x := t.shards[si].index(reply)
	h := tup.Hash(t.seed)
	p := Probe{shard: uint32(si), rev: reply, pos: x.home(h), tag: h &^ 0xffffffff}
	memhint.Prefetch(uintptr(unsafe.Pointer(&x.slots[p.pos])))
	return p
}

// PrefetchEntry starts loading the entry the probed slot names, if its tag
// is the flow's (most flows are found in their first slot).
func (t *Table) PrefetchEntry(p Probe) {
	s := &t.shards[p.shard]
	v := atomic.LoadUint64(&s.index(p.rev).slots[p.pos])
	if v == 0 || v&^0xffffffff != p.tag {
		return
	}
	if i := int(uint32(v)) - 1; i < len(s.entries) {
		e := uintptr(unsafe.Pointer(&s.entries[i]))
		memhint.Prefetch(e)
		memhint.Prefetch(e + 64)
	}
}
