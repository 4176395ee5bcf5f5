package conntrack

import (
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// Cache is one worker's cache of flows in front of the shared Table, so a
// packet of an established flow takes no lock and touches no shared
// memory but one generation counter.
//
// A packet is answered from the cache only when it changes nothing but
// counters: a UDP packet, or a TCP segment without SYN, FIN or RST of a
// flow that is established (or one-way and picked up mid-stream). Every
// other packet goes to the table, which stays the only place where state
// changes. The table bumps an entry's generation when the entry is
// removed or leaves a cacheable state, and a cached flow whose generation
// moved is a miss.
//
// What the cache defers: the flow's packet and byte counts, its last-seen
// time and the highest sequence number and window it saw. They are added
// to the table entry every FlushPackets packets, when the cached flow is
// older than FlushAfter since its last flush, when it leaves the cache,
// before the table handles another packet of the flow, and by FlushAll
// (the worker calls it every FlushAfter). So the table's counters of a
// busy flow lag by at most that, and expiry, which needs minutes of
// silence, is not affected.
//
// A flow is admitted on its second miss in the same slot in a row, so
// traffic spread over more flows than the cache holds (a scan) passes
// through to the table instead of churning the cache. While the table is
// Large, the cache is bypassed altogether: with that many flows it would
// rarely hit, and its own slots would only add a cache miss per packet
// (the worker prefetches the table instead). Not safe for concurrent use.
type Cache struct {
	t      *Table
	slots  []cacheSlot
	mask   uint64
	bypass bool // the table is Large: lookups go straight to it
	miss   Hit  // what a lookup the table answered returns
}

// Flush bounds; see Cache.
const (
	FlushPackets = 64
	FlushAfter   = int64(250e6) // 250 ms
)

type cacheSlot struct {
	tup       packet.Tuple
	reply     bool
	valid     bool
	candidate uint32 // tag of the last flow that missed here, for admission
	hit       Hit
	shard     uint32
	entry     int32
	gen       uint32
	// Deferred to the table entry:
	packets, bytes uint64
	last, flushed  int64
	end            uint32 // highest seq + len seen (TCP)
	win            uint16
	tracked        bool // end and win hold a segment's
}

// NewCache makes a cache of size flows (rounded up to a power of two).
func (t *Table) NewCache(size int) *Cache {
	n := 1
	for n < size {
		n <<= 1
	}
	return &Cache{t: t, slots: make([]cacheSlot, n), mask: uint64(n - 1)}
}

// Forward is Table.Forward through the cache. The hit it returns is the
// cache's own, valid until its next lookup: not copied on every packet.
func (c *Cache) Forward(fwd *packet.Tuple, seg *packet.Segment, bytes int, now int64) (*Hit, bool) {
	return c.lookup(fwd, seg, bytes, now, false)
}

// Reply is Table.Reply through the cache.
func (c *Cache) Reply(rev *packet.Tuple, seg *packet.Segment, bytes int, now int64) (*Hit, bool) {
	return c.lookup(rev, seg, bytes, now, true)
}

// Bypass turns bypassing on or off (the worker follows Table.Large once
// per batch); turning it on flushes and empties the cache.
func (c *Cache) Bypass(on bool, now int64) {
	if on && !c.bypass {
		c.FlushAll(now)
		for i := range c.slots {
			c.slots[i].valid = false
		}
	}
	c.bypass = on
}

func (c *Cache) lookup(tup *packet.Tuple, seg *packet.Segment, bytes int, now int64, reply bool) (*Hit, bool) {
	h := tup.Hash(c.t.seed)
	if c.bypass {
		var ok bool
		c.miss, _, _, ok = c.t.lookup(tup, h, seg, bytes, now, reply, false)
		return &c.miss, ok
	}
	sl := &c.slots[h&c.mask]
	quiet := tup.Proto == packet.ProtoUDP || seg.Flags&(flagSYN|flagFIN|flagRST) == 0
	same := sl.valid && sl.reply == reply && sl.tup == *tup
	if same && quiet && c.t.shards[sl.shard].gens[sl.entry].Load() == sl.gen {
		sl.packets++
		sl.bytes += uint64(bytes)
		sl.last = now
		if tup.Proto == packet.ProtoTCP {
			if end := seg.Seq + seg.Len; !sl.tracked || int32(end-sl.end) > 0 {
				sl.end = end
			}
			sl.win, sl.tracked = seg.Win, true
		}
		if sl.packets >= FlushPackets || now-sl.flushed >= FlushAfter {
			c.flush(sl, now)
		}
		return &sl.hit, true
	}
	// The table decides. What the slot holds goes there first, so the
	// table sees this flow's deferred counts before, say, its RST.
	c.flush(sl, now)
	tag := uint32(h >> 32)
	admit := quiet && (same || sl.candidate == tag)
	hit, r, cacheable, ok := c.t.lookup(tup, h, seg, bytes, now, reply, admit)
	c.miss = hit
	switch {
	case ok && admit && cacheable:
		*sl = cacheSlot{tup: *tup, reply: reply, valid: true, hit: hit, shard: r.shard, entry: r.entry, gen: r.gen,
			flushed: now}
	case same:
		sl.valid = false // not cacheable any more
	default:
		sl.candidate = tag
	}
	return &c.miss, ok
}

// flush adds a slot's deferred counts to its table entry.
func (c *Cache) flush(sl *cacheSlot, now int64) {
	if !sl.valid || sl.packets == 0 {
		return
	}
	c.t.addDeferred(ref{shard: sl.shard, entry: sl.entry, gen: sl.gen}, sl.packets, sl.bytes, sl.last, sl.reply,
		sl.tracked, sl.end, sl.win)
	sl.packets, sl.bytes, sl.tracked, sl.flushed = 0, 0, false, now
}

// FlushAll adds every slot's deferred counts to the table.
func (c *Cache) FlushAll(now int64) {
	for i := range c.slots {
		c.flush(&c.slots[i], now)
	}
}

// ref names a table entry as a cache saw it.
type ref struct {
	shard uint32
	entry int32
	gen   uint32
}

// cacheable says the packets of a flow in state s may be answered from a
// Cache: nothing but a FIN, RST or SYN would change it.
func cacheable(s State, oneWay bool) bool {
	return s == Established || s == UDP || oneWay && s == MidStream
}

// addDeferred adds a Cache's deferred counts to the entry r names, unless
// it is gone.
func (t *Table) addDeferred(r ref, packets, bytes uint64, last int64, reply, tracked bool, end uint32, win uint16) {
	s := &t.shards[r.shard]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gens[r.entry].Load() != r.gen {
		return
	}
	e := &s.entries[r.entry]
	e.Packets += packets
	e.Bytes += bytes
	if last > e.LastSeen {
		e.LastSeen = last
	}
	if tracked {
		e.tcp.update(&packet.Segment{Seq: end, Win: win}, reply)
	}
}
