package conntrack

import (
	"unsafe"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/memhint"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// Pin names a flow's table entry, one direction of it, as a lookup left it,
// together with the counts its quiet packets defer to the entry. A Cache
// slot holds one; so does a worker's express record of a flow at a Large
// table (see dataplane), which answers quiet packets by the rules Cache
// states: a packet is counted on a Pin only while Current holds, and the
// counts reach the entry every FlushPackets packets, after FlushAfter,
// before the table handles another packet of the direction, and on Flush.
// 48 bytes, no pointer. The zero Pin names nothing.
type Pin struct {
	shard          uint32
	entry          int32
	gen            uint32
	packets, bytes uint32 // deferred; at most FlushPackets packets, so 32 bits hold their bytes
	end            uint32 // highest seq + len seen (TCP)
	win            uint16 // TCP window last seen
	reply          bool   // the backend's direction
	tracked        bool   // end and win hold a segment's
	last, flushed  int64
}

// ref is the entry a Pin names.
func (p *Pin) ref() ref { return ref{shard: p.shard, entry: p.entry, gen: p.gen} }

// Current says the table has not changed the pinned flow since it was
// pinned: its entry's generation did not move.
func (t *Table) Current(p *Pin) bool {
	return t.shards[p.shard].gens[p.entry].Load() == p.gen
}

// PrefetchPin starts loading what Current reads.
func (t *Table) PrefetchPin(p *Pin) {
	memhint.Prefetch(uintptr(unsafe.Pointer(&t.shards[p.shard].gens[p.entry])))
}

// Count defers a quiet packet (the caller checked Current and Quiet) and
// says whether the Pin holds deferred counts after it: false when this
// packet flushed them, as every FlushPackets-th does, and one that finds
// them waiting staleAfter or longer since the last flush (0: never; a
// holder that flushes its Pins on a timer of its own needs no such rule).
func (t *Table) Count(p *Pin, proto ipproto.Proto, seg *packet.Segment, bytes int, now, staleAfter int64) bool {
	p.packets++
	p.bytes += uint32(bytes)
	p.last = now
	if proto == packet.ProtoTCP {
		if end := seg.Seq + seg.Len; !p.tracked || int32(end-p.end) > 0 {
			p.end = end
		}
		p.win, p.tracked = seg.Win, true
	}
	if p.packets >= FlushPackets || staleAfter > 0 && now-p.flushed >= staleAfter {
		t.Flush(p, now)
		return false
	}
	return true
}

// Flush adds the Pin's deferred counts to its entry, unless the entry is
// gone (its generation moved).
func (t *Table) Flush(p *Pin, now int64) {
	if p.packets == 0 {
		return
	}
	t.addDeferred(p.ref(), uint64(p.packets), uint64(p.bytes), p.last, p.reply, p.tracked, p.end, p.win)
	p.packets, p.bytes, p.tracked, p.flushed = 0, 0, false, now
}

// PrefetchFlush starts loading what Flush writes, if it will write.
func (t *Table) PrefetchFlush(p *Pin) {
	if p.packets == 0 {
		return
	}
	s := &t.shards[p.shard]
	memhint.Prefetch(uintptr(unsafe.Pointer(&s.gens[p.entry])))
	memhint.Prefetch(uintptr(unsafe.Pointer(&s.entries[p.entry].LastSeen)))
}

// LastSeen is when the Pin last counted a packet (or was made).
func (p *Pin) LastSeen() int64 { return p.last }

// pinOf is a fresh Pin of the entry r names, made at now.
func pinOf(r ref, reply bool, now int64) Pin {
	return Pin{shard: r.shard, entry: r.entry, gen: r.gen, reply: reply, last: now, flushed: now}
}
