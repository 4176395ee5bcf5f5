package dataplane

import (
	"unsafe"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/memhint"
)

// Express records: the express path (express.go) for a Large table.
//
// With a Large table the flow cache is bypassed (it would rarely hit) and
// so the express path, whose slots name cache slots, is off too. A packet
// of an established flow would then take the full path and a locked
// lookup in the shared table: ~170 ns at 32k flows before any cache miss,
// over 300 ns at a million. A worker with records instead keeps, per flow
// direction it forwards, one record: the express slot's key and rewrite,
// and the conntrack Pin its packets are counted on (the entry it names and
// the counts deferred to it), found from the frame alone. A batch is
// handled as a software pipeline (pump): for packet i+3g the record's tag
// line is asked for, for i+2g the record, for i+g the entry's generation
// it names, and packet i is handled, so the three misses of each packet
// overlap with those of the others.
//
// IPv4 only: an IPv6 packet takes the full path (prefetched as before).
// The rules are the flow cache's (conntrack.Cache): only quiet packets of
// established TCP or UDP flows, the entry's generation checked on every
// packet, counts flushed every FlushPackets packets, after FlushAfter, and
// before the table handles another packet of the direction. What differs:
// a record is made on the first packet the table answered (no second-miss
// admission: a new flow's first packet never makes one, since the table
// must insert it first); records are dropped wholesale by moving to a new
// epoch (a configuration change, the table leaving Large, a tap), with no
// pass over them; and the 250 ms flush walks a list of the records that
// hold counts, not all of them.

// xrec is one flow direction's record: 128 bytes, two cache lines that the
// pipeline asks for together, and no pointer, so that a worker's records,
// which may take hundreds of MiB, are not scanned by the GC
// (TestXrecLayout).
type xrec struct {
	addrs, ports uint64 // the key (xkey)
	naddrs       uint64 // what to write, as xslot
	mac          uint32
	nports       uint32
	epoch        uint32 // the xrecs epoch it was made in; another: stale
	xout
	ipSum, limit uint16
	stats        uint16 // index in xrecs.stats, 0: none to count
	dirty        bool   // listed in xrecs.dirty
	pin          conntrack.Pin
	_            [24]byte
}

// xrecs is a worker's records: 8-way buckets, their tags apart (32 bytes
// a bucket), so that a lookup reads one line of tags and then only its own
// record. With four ways, 1% of the benchmark's 32k flows found their
// bucket full at a quarter of the slots taken, and churned.
type xrecs struct {
	recs  []xrec
	tags  []uint32 // per record: its key's tag (bucket), 0: free
	mask  uint64
	dirty []uint32 // records that may hold deferred counts, each once
	// The backends' counters the records name, by index: a record holds
	// an index, not a pointer.
	stats   []*BackendStats
	statIdx map[*BackendStats]uint16
	epoch   uint32
}

// Bounds of a worker's records: the slots are twice the flow directions
// asked for, rounded up to a power of two, at most 2^24.
const (
	MaxWorkerFlows = 1 << 23
	xrecWays       = 8
)

// xrecSlots is the record slots for flows flow directions.
func xrecSlots(flows int) int {
	n := 64
	for n < 2*flows && n < 2*MaxWorkerFlows {
		n <<= 1
	}
	return n
}

// RecordBytes is the memory of a worker's records for flows flow
// directions (0: none): 136 bytes per slot, a record, its tag and its
// place in the flush list, two slots per direction at least.
func RecordBytes(flows int) int {
	if flows <= 0 {
		return 0
	}
	return xrecSlots(flows) * (int(unsafe.Sizeof(xrec{})) + 8)
}

// newXrecs makes records for flows flow directions (1 to MaxWorkerFlows).
// The kernel hands their memory out as records are made, in huge pages
// where it can.
func newXrecs(flows int) *xrecs {
	n := xrecSlots(flows)
	r := &xrecs{recs: make([]xrec, n), tags: make([]uint32, n), mask: uint64(n - 1), dirty: make([]uint32, 0, n),
		stats: make([]*BackendStats, 1, 64), statIdx: make(map[*BackendStats]uint16, 64), epoch: 1}
	memhint.HugePages(unsafe.Pointer(unsafe.SliceData(r.recs)), uintptr(n)*unsafe.Sizeof(xrec{}))
	memhint.HugePages(unsafe.Pointer(unsafe.SliceData(r.tags)), uintptr(n)*4)
	return r
}

// bucket is the first slot of k's bucket and k's tag (never 0), from
// other bits of the hash. The hash is mixed further than the express
// table's: with the benchmark's flows (clients differing in 16 address
// bits) a multiply's high bits put 286 buckets of 32768 past four flows
// where the Poisson law puts 121.
func (r *xrecs) bucket(k *xkey) (uint64, uint32) {
	h := k.addrs*0x9e3779b97f4a7c15 ^ k.ports
	h = (h ^ h>>32) * 0xff51afd7ed558ccd
	h = (h ^ h>>29) * 0xc4ceb9fe1a85ec53
	h ^= h >> 32
	return h & r.mask &^ (xrecWays - 1), uint32(h>>32) | 1
}

// prefetchTags starts loading bucket b's tags.
func (r *xrecs) prefetchTags(b uint64) {
	memhint.Prefetch(uintptr(unsafe.Pointer(&r.tags[b])))
}

// find is the slot in bucket b whose tag is tag, -1 if none; the record
// must still be checked against the key.
func (r *xrecs) find(b uint64, tag uint32) int32 {
	for i := b; i < b+xrecWays; i++ {
		if r.tags[i] == tag {
			return int32(i)
		}
	}
	return -1
}

// prefetchRec starts loading record i's two lines.
func (r *xrecs) prefetchRec(i int32) {
	p := uintptr(unsafe.Pointer(&r.recs[i]))
	memhint.Prefetch(p)
	memhint.Prefetch(p + 64)
}

// holds says record rec is k's, made in this epoch.
func (r *xrecs) holds(rec *xrec, k *xkey) bool {
	return rec.addrs == k.addrs && rec.ports == k.ports && rec.mac == k.mac && rec.epoch == r.epoch
}

// counted notes that record i holds deferred counts.
func (r *xrecs) counted(i int32, rec *xrec) {
	if !rec.dirty {
		rec.dirty = true
		r.dirty = append(r.dirty, uint32(i))
	}
}

// flushAll adds every record's deferred counts to the table: the records
// listed, not all of them. With a million flows each flush misses the CPU
// caches three times (the record, the entry's generation and the entry),
// ~220 ns in a row; as a pipeline, the record of flush k+2a and the
// table's lines of flush k+a are asked for while flush k is done.
func (r *xrecs) flushAll(ct *conntrack.Table, now int64) {
	const a = 8
	d := r.dirty
	for k := 0; k < len(d)+2*a; k++ {
		if k < len(d) {
			memhint.Prefetch(uintptr(unsafe.Pointer(&r.recs[d[k]].pin)))
		}
		if j := k - a; j >= 0 && j < len(d) {
			ct.PrefetchFlush(&r.recs[d[j]].pin)
		}
		if j := k - 2*a; j >= 0 {
			rec := &r.recs[d[j]]
			ct.Flush(&rec.pin, now)
			rec.dirty = false
		}
	}
	r.dirty = r.dirty[:0]
}

// renew flushes every record and makes them all stale: a new epoch. Once
// in 2^32 renewals the tags and records are cleared instead.
func (r *xrecs) renew(ct *conntrack.Table, now int64) {
	r.flushAll(ct, now)
	if r.epoch++; r.epoch == 0 {
		clear(r.tags)
		clear(r.recs)
		r.epoch = 1
	}
	clear(r.stats[1:])
	r.stats = r.stats[:1]
	clear(r.statIdx)
}

// statsIndex is the index of a backend's counters (nil: 0, none); false
// when the records name as many backends as an index holds.
func (r *xrecs) statsIndex(s *BackendStats) (uint16, bool) {
	if s == nil {
		return 0, true
	}
	if i, ok := r.statIdx[s]; ok {
		return i, true
	}
	if len(r.stats) > 0xffff {
		return 0, false
	}
	i := uint16(len(r.stats))
	r.stats = append(r.stats, s)
	r.statIdx[s] = i
	return i, true
}

// place is the record a new record of k takes, its tag set: k's own if
// the bucket has it, else a free or stale one, else the least recently
// seen, whose counts are flushed first, if that was seen FlushAfter ago or
// more. Nil when all were seen since: with more busy flows than records,
// those that have records keep them and the others take the table path,
// rather than each taking the last one's record in turn (a scan's flows
// would evict busy flows' records, and every packet would pay for a
// record it never uses).
func (r *xrecs) place(ct *conntrack.Table, k *xkey, now int64) *xrec {
	b, tag := r.bucket(k)
	v, free := b, -1
	for i := b; i < b+xrecWays; i++ {
		rec := &r.recs[i]
		if r.tags[i] == tag && r.holds(rec, k) {
			free = int(i)
			break
		}
		if free < 0 && (r.tags[i] == 0 || rec.epoch != r.epoch) {
			free = int(i)
		}
		if rec.pin.LastSeen() < r.recs[v].pin.LastSeen() {
			v = i
		}
	}
	if free >= 0 {
		v = uint64(free)
	} else if now-r.recs[v].pin.LastSeen() < conntrack.FlushAfter {
		return nil
	}
	rec := &r.recs[v]
	ct.Flush(&rec.pin, now)
	r.tags[v] = tag
	return rec
}
