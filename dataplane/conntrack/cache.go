package conntrack

import (
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
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
// A flow may take any of the cacheWays slots of its bucket, the least
// recently seen flow's when all are taken. It is admitted on its second
// miss while its bucket remembers the first (the last cacheWays flows that
// missed there), so traffic spread over more flows than the cache holds (a
// scan) passes through to the table instead of churning the cache. While
// the table is Large, the cache is bypassed altogether: with that many
// flows it would rarely hit, and its own slots would only add a cache miss
// per packet (the worker prefetches the table instead). Not safe for
// concurrent use.
type Cache struct {
	t      *Table
	slots  []cacheSlot
	mask   uint64
	bypass bool // the table is Large: lookups go straight to it
	miss   Hit  // what a lookup the table answered returns
	last   Ticket
	pin    Pin    // bypassed: the entry the last lookup found, if cacheable and wanted
	pinned bool   // bypassed lookups name the entry (WantPin)
	next   uint64 // where the next admission candidate goes in its bucket
	// keys are the slots' tags (the tuple hash's upper half, | 1; 0: free)
	// and cands the admission candidates (the last cacheWays flows that
	// missed in a bucket), apart from the slots: a miss reads one line of
	// each, not a line of every slot of its bucket.
	keys, cands []uint32
}

// Flush bounds; see Cache.
const (
	FlushPackets = 64
	FlushAfter   = int64(250e6) // 250 ms
)

// cacheSlot is one cached flow. What a hit reads and writes but the tuple
// and the Hit comes first, in one cache line (TestCacheSlotLayout): the
// express path's hits (Again) touch nothing else.
type cacheSlot struct {
	valid bool   // the slot holds a flow: keys[i] != 0, kept here so Again and flush read no other line
	stamp uint32 // bumped whenever the slot takes another flow or drops one: Tickets name a stamp
	pin   Pin    // the flow's entry and what is deferred to it
	tup   packet.Tuple
	hit   Hit
	_     [48]byte // whole cache lines: a slot's first line is its own
}

// NewCache makes a cache of size flows (rounded up to a power of two).
func (t *Table) NewCache(size int) *Cache {
	n := cacheWays
	for n < size {
		n <<= 1
	}
	return &Cache{t: t, slots: make([]cacheSlot, n), mask: uint64(n - 1), keys: make([]uint32, n),
		cands: make([]uint32, n)}
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
			c.slots[i].stamp++
		}
		clear(c.keys)
	}
	c.bypass = on
}

func (c *Cache) lookup(tup *packet.Tuple, seg *packet.Segment, bytes int, now int64, reply bool) (*Hit, bool) {
	h := tup.Hash(c.t.seed)
	if c.bypass {
		r, cacheable, ok := ref{}, false, false
		c.last = Ticket{}
		c.miss, r, cacheable, ok = c.t.lookup(tup, h, seg, bytes, now, reply, c.pinned)
		c.pin = Pin{}
		if ok && cacheable {
			c.pin = pinOf(r, reply, now)
		}
		return &c.miss, ok
	}
	b := h & c.mask &^ (cacheWays - 1)
	tag := uint32(h >> 32)
	quiet := Quiet(tup.Proto, seg.Flags)
	var sl *cacheSlot
	i := b
	for ; i < b+cacheWays; i++ {
		if c.keys[i] != tag|1 {
			continue
		}
		if s := &c.slots[i]; s.pin.reply == reply && s.tup.Same(tup) {
			sl = s
			break
		}
	}
	if sl != nil && quiet && c.t.Current(&sl.pin) {
		c.t.Count(&sl.pin, tup.Proto, seg, bytes, now, FlushAfter)
		c.last = Ticket{slot: uint32(i), stamp: sl.stamp}
		return &sl.hit, true
	}
	// The table decides. What the cache holds of the flow goes there
	// first, so the table sees its deferred counts before, say, its RST.
	if sl != nil {
		c.flush(sl, now)
	}
	admit := quiet && (sl != nil || c.candidate(b, tag))
	hit, r, cacheable, ok := c.t.lookup(tup, h, seg, bytes, now, reply, admit)
	c.miss = hit
	c.last = Ticket{}
	switch {
	case ok && admit && cacheable:
		if sl == nil {
			i = c.victim(b, now)
			sl = &c.slots[i]
		}
		c.keys[i] = tag | 1
		*sl = cacheSlot{tup: *tup, valid: true, stamp: sl.stamp + 1, hit: hit, pin: pinOf(r, reply, now)}
		c.last = Ticket{slot: uint32(i), stamp: sl.stamp}
	case sl != nil:
		sl.valid = false // not cacheable any more
		c.keys[i] = 0
		sl.stamp++
	default:
		c.next++ // the candidates each take a slot in turn
		c.cands[b+c.next%cacheWays] = tag
	}
	return &c.miss, ok
}

// candidate says a flow (its tag) missed in bucket b recently: the bucket
// remembers the last missing flows, one per slot, so flows that share it
// are admitted although their packets interleave.
func (c *Cache) candidate(b uint64, tag uint32) bool {
	for i := b; i < b+cacheWays; i++ {
		if c.cands[i] == tag {
			return true
		}
	}
	return false
}

// cacheWays is how many slots a flow may take in the cache: its bucket's.
// Flows whose hashes share a bucket do not evict one another (at 1k flows
// in 4k slots, a direct-mapped cache missed 12.8% of packets).
const cacheWays = 4

// victim is the slot of bucket b a new flow takes: a free one, or the one
// whose flow was seen longest ago, flushed.
func (c *Cache) victim(b uint64, now int64) uint64 {
	v := b
	for i := b; i < b+cacheWays; i++ {
		if c.keys[i] == 0 {
			return i
		}
		if c.slots[i].pin.last < c.slots[v].pin.last {
			v = i
		}
	}
	c.flush(&c.slots[v], now)
	return v
}

// Quiet says a packet changes nothing of its flow's state but counters,
// so a Cache may answer it: UDP, or TCP without SYN, FIN or RST.
func Quiet(proto ipproto.Proto, flags uint8) bool {
	return proto == packet.ProtoUDP || proto == packet.ProtoTCP && flags&(flagSYN|flagFIN|flagRST) == 0
}

// Ticket names the cached flow a lookup was answered from or admitted
// into, so that a later packet known to be of the same flow (the worker's
// express path, see dataplane) can be counted without the lookup. The zero
// Ticket names none.
type Ticket struct {
	slot, stamp uint32
}

// Last is the Ticket of the last lookup: zero when the flow is not in the
// cache after it.
func (c *Cache) Last() Ticket { return c.last }

// WantPin says whether the next lookups while bypassed are to name their
// flow's entry (LastPin): that reads the entry's generation, a cache miss
// of its own at a million flows, so only for packets that would use it.
func (c *Cache) WantPin(on bool) { c.pinned = on }

// LastPin is, while the cache is bypassed and a Pin was wanted, a Pin of
// the flow the last lookup found, if the flow may be answered from a Pin
// (established TCP, UDP); false otherwise.
func (c *Cache) LastPin() (Pin, bool) { return c.pin, c.bypass && c.pin != Pin{} }

// Again is a lookup that hits for the flow tk names: it counts the packet
// as a hit would, or says false when the slot holds
// another flow now, the table changed the flow (its generation moved), the
// cache is bypassed, or the packet is no quiet one (a TCP segment with SYN,
// FIN or RST), which must go to the table. The caller vouches that the
// packet is of that flow, in that direction.
func (c *Cache) Again(tk Ticket, proto ipproto.Proto, seg *packet.Segment, bytes int, now int64) bool {
	if tk.stamp == 0 || c.bypass {
		return false
	}
	sl := &c.slots[tk.slot&uint32(c.mask)]
	if !sl.valid || sl.stamp != tk.stamp || !Quiet(proto, seg.Flags) || !c.t.Current(&sl.pin) {
		return false
	}
	c.t.Count(&sl.pin, proto, seg, bytes, now, FlushAfter)
	return true
}

// flush adds a slot's deferred counts to its table entry.
func (c *Cache) flush(sl *cacheSlot, now int64) {
	if sl.valid {
		c.t.Flush(&sl.pin, now)
	}
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

// What moves an entry's generation: leaving a cacheable state, and being
// removed. A flow leaves cacheable states a few times at most, so the
// lower half never carries into the upper.
const (
	genChange  = 1
	genRemoved = 1 << 16
)

// addDeferred adds a Cache's deferred counts to the entry r names, unless
// the flow is gone from it. Counts deferred before the flow left a
// cacheable state (the other side's FIN, say) are its packets all the same.
func (t *Table) addDeferred(r ref, packets, bytes uint64, last int64, reply, tracked bool, end uint32, win uint16) {
	s := &t.shards[r.shard]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gens[r.entry].Load()/genRemoved != r.gen/genRemoved {
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
