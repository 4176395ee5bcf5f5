package conntrack

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/cpu"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/memhint"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// Entry is one tracked flow, IPv4 or IPv6 alike (16-byte addresses). It is
// 128 bytes, two cache lines, all of which a lookup reads: at a million
// flows each line is a cache miss. (It was 192 bytes with the tuples'
// hashes and an in-use flag; the index needs no hash from the entry, and
// an entry is in use when its protocol is set.)
type Entry struct {
	Fwd       packet.Tuple // client -> VIP
	Rev       packet.Tuple // backend -> client (after DNAT)
	Backend   uint32       // backend id from the dataplane config
	LastSeen  int64        // unix nanoseconds
	Packets   uint64
	Bytes     uint64
	tcp       track
	ClientMAC packet.MAC // next hop towards the client, learned from the first packet
	State     State
	OneWay    bool // DSR: only the client's packets pass the load balancer
}

// inUse says the entry holds a flow: a flow's protocol is TCP or UDP, a
// free entry is zero.
func (e *Entry) inUse() bool { return e.Fwd.Proto != 0 }

// FullNAT reports whether the backend sees another source than the
// client (a full-NAT address and port).
func (e *Entry) FullNAT() bool { return e.Rev.Dst != e.Fwd.Src || e.Rev.DstPort != e.Fwd.SrcPort }

// Counters are cumulative table events.
type Counters struct {
	Inserts, Evictions, Expired, Collisions uint64
	// IgnoredRSTs are RSTs outside the window: forwarded, but they did not
	// close the flow.
	IgnoredRSTs uint64
}

// Table is the flow table. Create it with New.
type Table struct {
	shards                                  []shard
	mask                                    uint64
	timeouts                                [numStates]int64
	seed                                    uint64
	inserts, evictions, expired, collisions atomic.Uint64
	ignoredRSTs                             atomic.Uint64
	count                                   atomic.Int64 // tracked flows, for Large
	onRemove                                func(*Entry)
}

const (
	shardBits = 6
	numShards = 1 << shardBits
)

// New makes a table holding at most capacity flows (rounded up to a
// multiple of the shard count). Memory is allocated here, once.
func New(capacity int, timeouts Timeouts) *Table {
	per := (capacity + numShards - 1) / numShards
	per = max(per, 4)
	// A random seed: with a fixed one, anyone reading this code could choose
	// client ports that pile into one probe run.
	var seed [8]byte
	rand.Read(seed[:])
	t := &Table{shards: make([]shard, numShards), mask: numShards - 1, seed: binary.LittleEndian.Uint64(seed[:])}
	for i := range timeouts {
		t.timeouts[i] = int64(timeouts[i])
	}
	// One allocation each for all shards' entries and index slots, in huge
	// pages where the kernel gives them (a lookup at a million flows would
	// otherwise miss the TLB as well as the cache).
	entries := make([]Entry, per*numShards)
	isz := indexSize(per)
	slots := make([]uint64, 2*isz*numShards)
	memhint.HugePages(unsafe.Pointer(unsafe.SliceData(entries)), uintptr(len(entries))*unsafe.Sizeof(Entry{}))
	memhint.HugePages(unsafe.Pointer(unsafe.SliceData(slots)), uintptr(len(slots))*8)
	gens := make([]atomic.Uint32, per*numShards)
	memhint.HugePages(unsafe.Pointer(unsafe.SliceData(gens)), uintptr(len(gens))*4)
	for i := range t.shards {
		f := slots[2*i*isz:]
		t.shards[i].init(entries[i*per:(i+1)*per], gens[i*per:(i+1)*per], f[:isz], f[isz:2*isz])
	}
	return t
}

// Shard is the shard of an endpoint. A full-NAT source port must be one
// whose endpoint falls in the same shard as the client's, so that the
// reply, which names only the SNAT endpoint, finds the flow; so every
// aligned block of ShardSpan ports holds one port of each shard: the
// block's seeded hash (one multiply, Fibonacci hashing) plus the port.
// With a plain hash of the port, a range of 64 ports left about a third of
// the shards without one, and their clients were refused while ports were
// free. An attacker who picks source ports still cannot tell which of a
// block's ports share a shard with another block's.
func (t *Table) Shard(addr packet.Addr, port uint16, proto ipproto.Proto) int {
	return t.shardOf(&addr, port, proto)
}

// shardOf is Shard reading the address in place: a copy of it is a 16-byte
// load, which stalls on the two 8-byte stores a decoded IPv4 address is.
func (t *Table) shardOf(addr *packet.Addr, port uint16, proto ipproto.Proto) int {
	k := (uint64(addr.Low())<<24 | uint64(port/ShardSpan)<<8 | uint64(proto)) ^ t.seed ^ addr.Upper()
	return int(((k*0x9e3779b97f4a7c15)>>(64-shardBits) + uint64(port)) & t.mask)
}

// ShardSpan is the number of ports whose aligned blocks cover every shard.
const ShardSpan = numShards

// CoversShards reports whether the port range lo-hi holds a port of every
// shard for any address: it must hold a whole aligned block of ShardSpan
// ports (any range of 2*ShardSpan-1 ports does). A full-NAT range that
// does not would refuse some clients for good while it has free ports.
func CoversShards(lo, hi uint16) bool {
	first := (int(lo) + ShardSpan - 1) / ShardSpan * ShardSpan
	return lo <= hi && first+ShardSpan-1 <= int(hi)
}

// Hit is what a lookup returns about a flow: only what the worker needs,
// since it is copied out on every packet. Peer is the other end as the
// packet's next hop must see it: for a client's packet, the address the
// backend sees as the client (the client, or a full-NAT address); for a
// backend's, the real client.
type Hit struct {
	Backend   uint32
	ClientMAC packet.MAC
	VIPPort   uint16
	PeerPort  uint16
	VIP       packet.Addr
	Peer      packet.Addr
}

// OnRemove sets a function called with every entry the table drops
// (expiry, eviction, replacement), under the table's lock: it must be quick
// and must not call the table. Set it before use.
func (t *Table) OnRemove(fn func(*Entry)) { t.onRemove = fn }

// drop removes entry i of shard s, telling onRemove first.
func (t *Table) drop(s *shard, i int32) {
	if t.onRemove != nil {
		t.onRemove(&s.entries[i])
	}
	s.remove(i, t.seed)
	t.count.Add(-1)
}

// shardFor is the shard of tup's flow: that of its client endpoint, which
// both directions share (the source of a client's packet, the destination
// of a reply). Full-NAT replies name the SNAT endpoint instead: its port is
// chosen in the client's shard (see Shard).
func (t *Table) shardFor(tup *packet.Tuple, reply bool) int {
	if reply {
		return t.shardOf(&tup.Dst, tup.DstPort, tup.Proto)
	}
	return t.shardOf(&tup.Src, tup.SrcPort, tup.Proto)
}

// index is the shard's index of a direction's tuples.
func (s *shard) index(reply bool) *index {
	if reply {
		return &s.rev
	}
	return &s.fwd
}

// Lookup finds the flow of a tuple without counting a packet or moving
// its state (for an ICMP error quoting it); reply says which direction
// the tuple is. It copies the entry.
func (t *Table) Lookup(tup packet.Tuple, reply bool) (Entry, bool) {
	s := &t.shards[t.shardFor(&tup, reply)]
	h := tup.Hash(t.seed)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.index(reply).find(s, h, &tup, reply); i >= 0 {
		return s.entries[i], true
	}
	return Entry{}, false
}

// Forward looks up a client->VIP packet, updating state and counters.
func (t *Table) Forward(fwd packet.Tuple, seg *packet.Segment, bytes int, now int64) (Hit, bool) {
	hit, _, _, ok := t.lookup(&fwd, fwd.Hash(t.seed), seg, bytes, now, false, false)
	return hit, ok
}

// Reply looks up a backend->client packet.
func (t *Table) Reply(rev packet.Tuple, seg *packet.Segment, bytes int, now int64) (Hit, bool) {
	hit, _, _, ok := t.lookup(&rev, rev.Hash(t.seed), seg, bytes, now, true, false)
	return hit, ok
}

// lookup looks a packet up (h is its tuple's hash), accounting it. With
// wantRef it also names the entry (with its generation after this packet)
// for a Cache and says whether the flow may be cached; both are read
// under the lock, where they agree with each other.
func (t *Table) lookup(tup *packet.Tuple, h uint64, seg *packet.Segment, bytes int, now int64, reply, wantRef bool) (Hit, ref, bool, bool) {
	si := t.shardFor(tup, reply)
	s := &t.shards[si]
	s.mu.Lock()
	i := s.index(reply).find(s, h, tup, reply)
	if i < 0 {
		s.mu.Unlock()
		return Hit{}, ref{}, false, false
	}
	e := &s.entries[i]
	was := e.State
	if !e.touch(seg, bytes, now, reply) {
		t.ignoredRSTs.Add(1)
	}
	if e.State != was && cacheable(was, e.OneWay) {
		s.gens[i].Add(genChange) // caches holding it must come back here
	}
	hit := Hit{Backend: e.Backend, ClientMAC: e.ClientMAC, VIP: e.Fwd.Dst, VIPPort: e.Fwd.DstPort,
		Peer: e.Rev.Dst, PeerPort: e.Rev.DstPort}
	if reply {
		hit.Peer, hit.PeerPort = e.Fwd.Src, e.Fwd.SrcPort
	}
	var r ref
	var c bool
	if wantRef {
		r = ref{shard: uint32(si), entry: i, gen: s.gens[i].Load()}
		c = cacheable(e.State, e.OneWay)
	}
	s.mu.Unlock()
	return hit, r, c, true
}

// touch accounts a packet and moves the state; it returns false for an RST
// outside the window, which changes nothing but the counters.
func (e *Entry) touch(seg *packet.Segment, bytes int, now int64, reply bool) bool {
	e.LastSeen = now
	e.Packets++
	e.Bytes += uint64(bytes)
	if e.State == UDP {
		return true
	}
	if seg.Flags&flagRST != 0 && !e.tcp.rstInWindow(seg, reply) {
		return false
	}
	e.tcp.update(seg, reply)
	e.State = next(e.State, seg.Flags, reply, e.OneWay)
	return true
}

// NewFlow is what a new entry records besides its tuples.
type NewFlow struct {
	Backend   uint32     // backend id from the dataplane config
	ClientMAC packet.MAC // next hop towards the client
	FromReply bool       // rebuilt from a backend's packet (after a restart)
	OneWay    bool       // DSR: replies never pass the load balancer
}

// Insert adds a new flow from its first packet, fwd being client -> VIP
// and rev the tuple of the backend's replies. When the shard is full the
// least recently seen of a few sampled flows is evicted. It returns false
// only if rev already belongs to another flow (the same backend:port serving
// two VIPs to the same client port), which is counted as a collision.
func (t *Table) Insert(fwd, rev packet.Tuple, nf NewFlow, seg *packet.Segment, bytes int, now int64) bool {
	s := &t.shards[t.shardFor(&fwd, false)]
	fh, rh := fwd.Hash(t.seed), rev.Hash(t.seed)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.fwd.find(s, fh, &fwd, false); i >= 0 {
		t.drop(s, i) // a reused client port after a missed close: start over
	}
	if i := s.rev.find(s, rh, &rev, true); i >= 0 {
		if !nf.FromReply {
			t.collisions.Add(1)
			return false
		}
		t.drop(s, i)
	}
	if len(s.free) == 0 {
		t.drop(s, s.victim())
		t.evictions.Add(1)
	}
	i := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	s.entries[i] = Entry{Fwd: fwd, Rev: rev, ClientMAC: nf.ClientMAC, Backend: nf.Backend, OneWay: nf.OneWay,
		State: firstState(fwd.Proto, seg.Flags, nf.FromReply), LastSeen: now, Packets: 1, Bytes: uint64(bytes)}
	s.entries[i].tcp = track{{wscale: packet.NoWScale}, {wscale: packet.NoWScale}}
	if fwd.Proto == packet.ProtoTCP {
		s.entries[i].tcp.update(seg, nf.FromReply)
	}
	s.fwd.insert(fh, i)
	s.rev.insert(rh, i)
	t.inserts.Add(1)
	t.count.Add(1)
	return true
}

// Expire removes flows idle longer than their state's timeout and returns
// how many it removed.
func (t *Table) Expire(now int64) int {
	n := 0
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		for i := range s.entries {
			e := &s.entries[i]
			if e.inUse() && now-e.LastSeen > t.timeouts[e.State] {
				t.drop(s, int32(i))
				n++
			}
		}
		s.mu.Unlock()
	}
	t.expired.Add(uint64(n))
	return n
}

// Len is the number of tracked flows.
func (t *Table) Len() int {
	n := 0
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		n += len(s.entries) - len(s.free)
		s.mu.Unlock()
	}
	return n
}

// Entries copies out up to limit tracked flows (limit <= 0: all), for
// listing; it allocates.
func (t *Table) Entries(limit int) []Entry {
	var out []Entry
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		for _, e := range s.entries {
			if limit > 0 && len(out) == limit {
				break
			}
			if e.inUse() {
				out = append(out, e)
			}
		}
		s.mu.Unlock()
	}
	return out
}

// ActiveByBackend counts flows that are not closed, per backend id, without
// copying the table.
func (t *Table) ActiveByBackend() map[uint32]uint64 {
	out := map[uint32]uint64{}
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		for i := range s.entries {
			if e := &s.entries[i]; e.inUse() && e.State != Closed {
				out[e.Backend]++
			}
		}
		s.mu.Unlock()
	}
	return out
}

// Capacity is the most flows the table holds.
func (t *Table) Capacity() int { return len(t.shards) * len(t.shards[0].entries) }

// Counters returns the cumulative table events.
func (t *Table) Counters() Counters {
	return Counters{Inserts: t.inserts.Load(), Evictions: t.evictions.Load(),
		Expired: t.expired.Load(), Collisions: t.collisions.Load(), IgnoredRSTs: t.ignoredRSTs.Load()}
}

type shard struct {
	mu      sync.Mutex
	entries []Entry
	// gens count, per entry slot, the changes a worker's Cache must see:
	// the entry's removals (upper half) and its leaving a cacheable state
	// (lower half), apart so that counts deferred before a state change
	// are still added (addDeferred).
	gens  []atomic.Uint32
	free  []int32
	fwd   index
	rev   index
	clock int              // eviction sampling cursor
	_     cpu.CacheLinePad // one shard's lock never shares a line with the next's
}

func (s *shard) init(entries []Entry, gens []atomic.Uint32, fwd, rev []uint64) {
	n := len(entries)
	s.entries, s.gens = entries, gens
	s.free = make([]int32, n)
	for i := range s.free {
		s.free[i] = int32(n - 1 - i)
	}
	s.fwd.init(fwd)
	s.rev.init(rev)
}

// remove frees entry i; seed is the table's, to find its index slots.
func (s *shard) remove(i int32, seed uint64) {
	s.gens[i].Add(genRemoved)
	e := &s.entries[i]
	s.fwd.delete(e.Fwd.Hash(seed), i)
	s.rev.delete(e.Rev.Hash(seed), i)
	*e = Entry{}
	s.free = append(s.free, i)
}

// victim samples a few entries round-robin and picks the least recently
// seen (approximate LRU, as Redis does), preferring closed flows.
func (s *shard) victim() int32 {
	const samples = 8
	best := int32(-1)
	for k := 0; k < samples; k++ {
		i := int32(s.clock % len(s.entries))
		s.clock++
		e := &s.entries[i]
		if best < 0 || e.State == Closed || e.LastSeen < s.entries[best].LastSeen {
			best = i
			if e.State == Closed {
				break
			}
		}
	}
	return best
}

// Bounds of New's capacity: a few entries per shard at least, and at most
// 64M flows (about 10.5 GiB at 168 bytes each: a 128-byte entry, two
// indexes of 8-byte slots at twice the entries, a generation and a free slot).
const (
	MinCapacity = 4 * numShards
	MaxCapacity = 1 << 26
)
