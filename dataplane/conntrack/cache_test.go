package conntrack

import (
	"testing"
	"unsafe"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// established makes a flow and walks it through the handshake.
func established(t *testing.T, tb *Table, i uint32) (fwd, rev packet.Tuple) {
	t.Helper()
	fwd, rev = flow(i, uint16(i))
	if !tb.Insert(fwd, rev, NewFlow{Backend: 1}, sg(flagSYN), 60, 1) {
		t.Fatal("insert")
	}
	tb.Reply(rev, sg(flagSYN|flagACK), 60, 2)
	tb.Forward(fwd, sg(flagACK), 60, 3)
	if e, _ := tb.Lookup(fwd, false); e.State != Established {
		t.Fatalf("state %s", e.State)
	}
	return fwd, rev
}

func entry(t *testing.T, tb *Table, fwd packet.Tuple) Entry {
	t.Helper()
	e, ok := tb.Lookup(fwd, false)
	if !ok {
		t.Fatal("flow gone")
	}
	return e
}

// Cached packets are counted in the table when flushed: every
// FlushPackets packets, on FlushAll, and before the table sees the flow.
func TestCacheDefersCounts(t *testing.T) {
	tb := New(1024, DefaultTimeouts)
	c := tb.NewCache(64)
	fwd, _ := established(t, tb, 1)
	base := entry(t, tb, fwd).Packets
	now := int64(10)
	ack := &packet.Segment{Flags: flagACK, Seq: 1000, Len: 100, Win: 500}
	for range 10 { // the first two are misses (admission), the rest hits
		now++
		if h, ok := c.Forward(&fwd, ack, 100, now); !ok || h.Backend != 1 {
			t.Fatal("cached lookup failed")
		}
		ack.Seq += 100
	}
	if got := entry(t, tb, fwd).Packets - base; got >= 10 {
		t.Fatalf("table already has %d of 10 packets: nothing was deferred", got)
	}
	c.FlushAll(now)
	e := entry(t, tb, fwd)
	if e.Packets-base != 10 || e.LastSeen != now {
		t.Fatalf("after flush: %d packets, last seen %d; want 10, %d", e.Packets-base, e.LastSeen, now)
	}
	// FlushPackets packets in a row reach the table without FlushAll.
	for range FlushPackets {
		now++
		c.Forward(&fwd, ack, 100, now)
	}
	if e := entry(t, tb, fwd); e.Packets-base != 10+FlushPackets {
		t.Fatalf("%d packets after %d more, want %d", e.Packets-base, FlushPackets, 10+FlushPackets)
	}
}

// A FIN goes to the table and ends caching of both directions: the other
// direction's cache (another worker) sees the generation move.
func TestCacheLeavesStateChangesToTheTable(t *testing.T) {
	tb := New(1024, DefaultTimeouts)
	fc, rc := tb.NewCache(64), tb.NewCache(64)
	fwd, rev := established(t, tb, 2)
	for range 3 {
		fc.Forward(&fwd, sg(flagACK), 60, 5)
		rc.Reply(&rev, sg(flagACK), 60, 5)
	}
	fc.Forward(&fwd, sg(flagFIN|flagACK), 60, 6)
	if e := entry(t, tb, fwd); e.State != Closing {
		t.Fatalf("state after FIN %s", e.State)
	}
	// The backend's ACK of that FIN, through the cache that held the
	// established flow, must reach the table at once.
	rc.FlushAll(6)
	before := entry(t, tb, fwd).Packets
	rc.Reply(&rev, sg(flagACK), 60, 7)
	if entry(t, tb, fwd).Packets != before+1 {
		t.Fatal("a packet of a closing flow was answered from another worker's cache")
	}
	rc.Reply(&rev, sg(flagFIN|flagACK), 60, 8)
	if e := entry(t, tb, fwd); e.State != Closed {
		t.Fatalf("state after both FINs %s", e.State)
	}
}

// Counts a cache deferred reach the table although the flow left its
// cacheable state meanwhile (the backend's FIN, through another worker):
// the packets passed, the flow is the same.
func TestCacheKeepsCountsAcrossStateChange(t *testing.T) {
	tb := New(1024, DefaultTimeouts)
	fc := tb.NewCache(64)
	fwd, rev := established(t, tb, 6)
	base := entry(t, tb, fwd).Packets
	for range 7 { // two misses (admission), then five deferred hits
		fc.Forward(&fwd, sg(flagACK), 60, 5)
	}
	tb.Reply(rev, sg(flagFIN|flagACK), 60, 6)
	fc.FlushAll(7)
	if got := entry(t, tb, fwd).Packets - base; got != 8 {
		t.Fatalf("the table counted %d of 8 packets", got)
	}
	// A flow the table removed gets none of them, nor does the flow that
	// took its entry.
	a, _ := established(t, tb, 8)
	for range 7 {
		fc.Forward(&a, sg(flagACK), 60, 10)
	}
	if n := tb.Expire(int64(DefaultTimeouts[Established]) + 100); n != 2 {
		t.Fatalf("expired %d", n)
	}
	j := uint32(9)
	for ; ; j++ { // a flow of a's shard: it takes a's entry
		if b, _ := flow(j, uint16(j)); tb.shardFor(&b, false) == tb.shardFor(&a, false) {
			break
		}
	}
	b, _ := established(t, tb, j)
	before := entry(t, tb, b).Packets
	fc.FlushAll(11)
	if got := entry(t, tb, b).Packets; got != before {
		t.Fatalf("the entry's next flow went from %d to %d packets: it got the removed flow's", before, got)
	}
}

// A flow the table dropped (expired, evicted, replaced) is a miss.
func TestCacheMissesRemovedFlow(t *testing.T) {
	tb := New(1024, DefaultTimeouts)
	c := tb.NewCache(64)
	fwd, _ := established(t, tb, 3)
	for range 3 {
		c.Forward(&fwd, sg(flagACK), 60, 5)
	}
	if n := tb.Expire(int64(DefaultTimeouts[Established]) + 100); n != 1 {
		t.Fatalf("expired %d", n)
	}
	if _, ok := c.Forward(&fwd, sg(flagACK), 60, int64(DefaultTimeouts[Established])+200); ok {
		t.Fatal("an expired flow was found in the cache")
	}
}

// An RST is checked against the sequence numbers the cache deferred: the
// cache's highest sequence reaches the table before the RST does.
func TestCacheRSTSeesDeferredSequence(t *testing.T) {
	tb := New(1024, DefaultTimeouts)
	c := tb.NewCache(64)
	fwd, _ := established(t, tb, 4)
	seq := uint32(1)
	for range 20 { // 20 x 60000 bytes: far beyond a 64 KiB window from the start
		c.Forward(&fwd, &packet.Segment{Flags: flagACK, Seq: seq, Len: 60000, Win: 65535, WScale: packet.NoWScale}, 60, 5)
		seq += 60000
	}
	c.Forward(&fwd, &packet.Segment{Flags: flagRST, Seq: seq, WScale: packet.NoWScale}, 40, 6)
	if e := entry(t, tb, fwd); e.State != Closed {
		t.Fatalf("an in-window RST after cached segments left the flow %s (ignored RSTs %d)", e.State,
			tb.Counters().IgnoredRSTs)
	}
}

// Bypass flushes and empties the cache; lookups then go to the table.
func TestCacheBypass(t *testing.T) {
	tb := New(1024, DefaultTimeouts)
	c := tb.NewCache(64)
	fwd, _ := established(t, tb, 5)
	base := entry(t, tb, fwd).Packets
	for range 5 {
		c.Forward(&fwd, sg(flagACK), 60, 5)
	}
	c.Bypass(true, 6)
	if got := entry(t, tb, fwd).Packets - base; got != 5 {
		t.Fatalf("%d of 5 packets after bypass", got)
	}
	c.Forward(&fwd, sg(flagACK), 60, 7)
	if got := entry(t, tb, fwd).Packets - base; got != 6 {
		t.Fatal("a bypassed cache deferred a packet")
	}
}

// A hit's fields fill the first cache line of a slot, and slots are whole
// lines, so the express path touches one line of the cache per packet.
func TestCacheSlotLayout(t *testing.T) {
	var sl cacheSlot
	if n := unsafe.Sizeof(sl); n%64 != 0 {
		t.Fatalf("a slot is %d bytes, not whole cache lines", n)
	}
	if end := unsafe.Offsetof(sl.pin) + unsafe.Sizeof(sl.pin); end > 64 {
		t.Fatalf("a hit's fields end at byte %d, past the first line", end)
	}
}

// Flows that share a bucket are all cached: four flows in a cache of four
// slots (one bucket) hit on every packet once admitted, although their
// packets interleave (a direct-mapped cache lets colliding flows evict one
// another, and a single admission candidate admits none of them).
func TestCacheWaysKeepCollidingFlows(t *testing.T) {
	tb := New(1024, DefaultTimeouts)
	c := tb.NewCache(4)
	var fwds []packet.Tuple
	for i := range uint32(4) {
		fwd, _ := established(t, tb, 10+i)
		fwds = append(fwds, fwd)
	}
	ack := &packet.Segment{Flags: flagACK, Seq: 1000, Win: 500}
	now := int64(10)
	round := func() {
		for i := range fwds {
			now++
			if _, ok := c.Forward(&fwds[i], ack, 60, now); !ok {
				t.Fatal("lookup failed")
			}
		}
	}
	round()
	round() // admitted: the second miss in the bucket
	before := make([]uint64, len(fwds))
	for i, fwd := range fwds {
		before[i] = entry(t, tb, fwd).Packets
	}
	for range 10 {
		round()
		if c.Last() == (Ticket{}) {
			t.Fatal("the last flow is not cached")
		}
	}
	for i, fwd := range fwds {
		if got := entry(t, tb, fwd).Packets; got != before[i] {
			t.Fatalf("flow %d: the table saw %d of its cached packets", i, got-before[i])
		}
	}
}

// Counts a cache deferred go to the table with the first packet that finds
// them FlushAfter old; a Pin counted without that rule (staleAfter 0, as
// the dataplane's records are) keeps them until its holder flushes.
func TestCacheFlushesStaleCounts(t *testing.T) {
	tb := New(1024, DefaultTimeouts)
	c := tb.NewCache(64)
	fwd, _ := established(t, tb, 9)
	base := entry(t, tb, fwd).Packets
	for range 4 { // two misses (admission), then two deferred hits
		c.Forward(&fwd, sg(flagACK), 60, 10)
	}
	c.Forward(&fwd, sg(flagACK), 60, 10+FlushAfter)
	if got := entry(t, tb, fwd).Packets - base; got != 5 {
		t.Fatalf("the table has %d of 5 packets after a hit FlushAfter later", got)
	}
	p := c.slots[c.Last().slot].pin // a copy: the cache's own stays as it is
	for range 3 {
		if !tb.Count(&p, packet.ProtoTCP, sg(flagACK), 60, 20+10*FlushAfter, 0) {
			t.Fatal("a Pin without a stale rule flushed by age")
		}
	}
	tb.Flush(&p, 30+10*FlushAfter)
	if got := entry(t, tb, fwd).Packets - base; got != 8 {
		t.Fatalf("the table has %d of 8 packets after the Pin's flush", got)
	}
}
