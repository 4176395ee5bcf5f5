package dataplane

import (
	"encoding/binary"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/checksum"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// The express path: what the full path did to the last packet of a cached
// flow, replayed on the next one without decoding it into a Packet, looking
// up the service, backend or endpoint, or calling the rewrite functions.
//
// A worker remembers, per flow it has just forwarded or replied to from its
// flow cache, the frame's key (addresses, ports, protocol, the side it came
// in on, the source MAC), the cache's ticket for the flow, and the result:
// new addresses, ports and next-hop MAC, and the checksums' changes, which
// are the same for every packet of the flow (RFC 1624: the sum of ~old +
// new over the changed words; the IPv4 header's also takes the TTL's -1 in
// the word it shares with the protocol). A packet with the same key whose
// flow the cache still holds unchanged gets that result; any other packet
// takes the full path. The table is emptied when the configuration changes.
//
// It takes only what the full path would handle the same way without
// looking further: IPv4 without options and not a fragment, or IPv6
// without extension headers (express6.go), TCP without SYN, FIN or RST or
// UDP, a TTL above 1, no larger than the link takes. The rest (ICMP,
// dsr-ipip, a tap, a Large table, whose cache is bypassed) always takes the
// full path. TestExpressMatchesFullPath feeds the same traffic through both
// and compares every byte and counter.

// xkey identifies a frame's flow on the express path, as the frame holds
// it (little-endian loads: no byte order is converted).
type xkey struct {
	addrs uint64 // IPv4 source and destination
	ports uint64 // source and destination port, protocol << 32, side << 40, source MAC bytes 4-5 << 48
	mac   uint32 // source MAC bytes 0-3
}

// xslot is the remembered handling of one flow: one cache line
// (TestExpressSlotIsOneLine). It holds no configuration: the worker
// empties the table when the configuration changes.
type xslot struct {
	addrs, ports uint64 // the key (xkey)
	mac          uint32
	// What to write, as the frame holds it:
	nports uint32        // new source and destination port
	naddrs uint64        // new source and destination address, at frame offset 26
	stats  *BackendStats // nil: none to count (the backend is gone)
	ticket conntrack.Ticket
	xout
	ipSum uint16 // to add to the IPv4 header checksum's complement
	limit uint16 // the largest IP length the way out takes
}

// xout is where the express path sends a flow's frames and what it writes
// into them besides addresses and ports (xfinish), as a slot and a record
// (xrecord.go) hold it.
type xout struct {
	dmac0 uint32 // the next hop's MAC, bytes 0-3 (the source MAC is the configuration's)
	dmac1 uint16 // bytes 4-5
	l4Sum uint16 // to add to the TCP/UDP checksum's complement
	out   side
}

// xframe is what the express path reads of a frame.
type xframe struct {
	key   xkey
	ipLen int
	proto ipproto.Proto
	seg   packet.Segment
	v6    bool
	hi    [3]uint64 // IPv6: the addresses' upper 12 bytes (key)
}

// Frame offsets of an IPv4 header without options and what follows it.
const (
	xTTL  = 14 + 8
	xCsum = 14 + 10
	xHdr  = 14 + 12 // source address, destination address, ports
	xL4   = 14 + 20
)

// xparse reads an express candidate: an IPv4 frame, header without
// options, no fragment, TTL above 1, carrying TCP (data offset sane) or
// UDP. False for any other frame.
func xparse(f []byte, backendSide bool, x *xframe) bool {
	x.ipLen = 0
	if len(f) < xL4+8 || f[12] != 0x08 || f[13] != 0 || f[14] != 0x45 {
		return false
	}
	total := int(f[16])<<8 | int(f[17])
	if total < 20 || 14+total > len(f) || f[20]&0x3f != 0 || f[21] != 0 || f[xTTL] <= 1 {
		return false
	}
	if !xparseL4(f[xL4:14+total], ipproto.Proto(f[23]), x) {
		return false
	}
	x.ipLen, x.v6 = total, false
	x.key = xkeyOf(binary.LittleEndian.Uint64(f[xHdr:]), f, xHdr+8, x.proto, backendSide)
	return true
}

// xparseL4 reads a TCP (data offset sane) or UDP header and what follows
// it, l4, into x.
func xparseL4(l4 []byte, proto ipproto.Proto, x *xframe) bool {
	x.proto = proto
	switch proto {
	case packet.ProtoTCP:
		if len(l4) < 20 {
			return false
		}
		doff := int(l4[12]>>4) * 4
		// A SYN, FIN or RST is never express (Cache.Again refuses it): no
		// lookup for it, so a SYN flood does not pay for one.
		if doff < 20 || doff > len(l4) || !conntrack.Quiet(proto, l4[13]) {
			return false
		}
		// Field by field (all of them): a Segment literal was built on the
		// stack and copied in 8 bytes over its narrower stores, a
		// store-forwarding stall of ~5 ns on every express packet.
		x.seg.Flags, x.seg.WScale, x.seg.Win = l4[13], packet.NoWScale, binary.BigEndian.Uint16(l4[14:])
		x.seg.Seq, x.seg.Len = binary.BigEndian.Uint32(l4[4:]), uint32(len(l4)-doff)
	case packet.ProtoUDP:
		if len(l4) < 8 {
			return false
		}
		x.seg = packet.Segment{}
	default:
		return false
	}
	return true
}

// xkeyOf is the key of frame f whose addresses' low words are addrs and
// whose ports are at ports.
func xkeyOf(addrs uint64, f []byte, ports int, proto ipproto.Proto, backendSide bool) xkey {
	side := uint64(0)
	if backendSide {
		side = 1
	}
	return xkey{addrs: addrs,
		ports: uint64(binary.LittleEndian.Uint32(f[ports:])) | uint64(proto)<<32 | side<<40 |
			uint64(binary.LittleEndian.Uint16(f[10:]))<<48,
		mac: binary.LittleEndian.Uint32(f[6:])}
}

// slot is where k's flow is in a table of mask+1 slots (at most 2^24): the
// high bits of a multiply, which every input bit reaches.
func (k *xkey) slot(mask uint64) uint64 {
	h := (k.addrs*0x9e3779b97f4a7c15 ^ k.ports) * 0xff51afd7ed558ccd
	return h >> 40 & mask
}

// xways is how many slots of the express table a flow may take: its
// bucket's, as in the flow cache.
const xways = 4

// xbuckets marks the buckets of an express table that took a flow since
// the table was last emptied: a packet whose bucket is unmarked (a new
// flow, as most of a flood's are) skips the lookup and its cold lines.
type xbuckets []uint64

func newXbuckets(slots int) xbuckets { return make(xbuckets, (slots/xways+63)/64) }

func (m xbuckets) has(b uint64) bool { i := b / xways; return m[i/64]>>(i%64)&1 != 0 }
func (m xbuckets) mark(b uint64)     { i := b / xways; m[i/64] |= 1 << (i % 64) }

// xslotOf is the slot holding k's flow, nil if none does; with create,
// the slot a new flow takes (xpick) when none does.
func (w *Worker) xslotOf(k *xkey, create bool) *xslot {
	b := k.slot(uint64(len(w.xslots)-1)) &^ (xways - 1)
	if create {
		w.xused.mark(b)
	} else if !w.xused.has(b) {
		return nil
	}
	free := -1
	for i := b; i < b+xways; i++ {
		sl := &w.xslots[i]
		if sl.addrs == k.addrs && sl.ports == k.ports && sl.mac == k.mac {
			return sl
		}
		if sl.ports == 0 && free < 0 {
			free = int(i)
		}
	}
	if !create {
		return nil
	}
	return &w.xslots[w.xpick(b, free)]
}

// xpick is the slot of bucket b a new flow takes: free if it is one (>= 0),
// or else each in turn.
func (w *Worker) xpick(b uint64, free int) uint64 {
	if free >= 0 {
		return uint64(free)
	}
	w.xnext++
	return b + uint64(w.xnext%xways)
}

// express handles frame f, received on in, from its flow's express slot;
// false leaves it to the full path untouched. x is the parsed frame then.
func (w *Worker) express(t *table, now int64, f []byte, backendSide bool, x *xframe) (side, bool) {
	if !xparse(f, backendSide, x) {
		return w.express6(t, now, f, backendSide, x)
	}
	sl := w.xslotOf(&x.key, false)
	if sl == nil || x.ipLen > int(sl.limit) ||
		!w.flows.Again(sl.ticket, x.proto, &x.seg, x.ipLen, now) {
		return drop, false
	}
	xrewrite4(f, sl.ipSum, sl.naddrs, sl.nports)
	return w.xfinish(t, f, xL4, x, &sl.xout, sl.stats, true), true
}

// xrewrite4 writes an IPv4 frame's new addresses and ports, one hop less,
// and the header checksum's change ipSum.
func xrewrite4(f []byte, ipSum uint16, naddrs uint64, nports uint32) {
	f[xTTL]--
	binary.BigEndian.PutUint16(f[xCsum:], checksum.Adjust(binary.BigEndian.Uint16(f[xCsum:]), ipSum))
	binary.LittleEndian.PutUint64(f[xHdr:], naddrs)
	binary.LittleEndian.PutUint32(f[xHdr+8:], nports)
}

// xfinish does what the IPv4 and IPv6 express paths share: the MACs, the
// TCP/UDP checksum (the L4 header at l4), the counters (stats: the
// backend's, nil: none). v4: a UDP checksum of 0 means none and stays.
func (w *Worker) xfinish(t *table, f []byte, l4 int, x *xframe, sl *xout, stats *BackendStats, v4 bool) side {
	binary.LittleEndian.PutUint32(f[0:], sl.dmac0)
	binary.LittleEndian.PutUint16(f[4:], sl.dmac1)
	copy(f[6:12], t.srcMAC(sl.out)[:])
	if x.proto == packet.ProtoTCP {
		c := f[l4+16 : l4+18]
		binary.BigEndian.PutUint16(c, checksum.Adjust(binary.BigEndian.Uint16(c), sl.l4Sum))
	} else if c := f[l4+6 : l4+8]; !v4 || c[0]|c[1] != 0 { // IPv4, 0: the sender computed no UDP checksum
		s := checksum.Adjust(binary.BigEndian.Uint16(c), sl.l4Sum)
		if s == 0 {
			s = 0xffff // 0 would mean "no checksum" (RFC 768)
		}
		binary.BigEndian.PutUint16(c, s)
	}
	if stats != nil {
		w.beCounts.add(stats, 1, uint64(x.ipLen), 0)
	}
	if sl.out == toBackend {
		w.counters.n[cForwarded]++
	} else {
		w.counters.n[cReplied]++
	}
	w.counters.n[cExpress]++
	return sl.out
}

// remember makes an express slot of how the full path just handled the
// frame x was parsed from (now f), if the express path may replay it: the
// packet went to a backend or a client (w.xb says how, and forward and
// reply change nothing but the addresses, ports, MACs and TTL), and its
// flow is in the cache.
func (w *Worker) remember(f []byte, x *xframe) {
	if !w.xb.ok {
		return
	}
	tk := w.flows.Last()
	if tk == (conntrack.Ticket{}) {
		return
	}
	if x.v6 {
		w.remember6(f, x, tk)
		return
	}
	sl := w.xslotOf(&x.key, true)
	w.xfill(sl, f, x, tk, binary.LittleEndian.Uint64(f[xHdr:]), xHdr+8)
	sl.ipSum, sl.l4Sum = xsums4(f, &x.key)
}

// xsums4 are the IPv4 header's and the TCP/UDP checksum's changes from a
// frame with key k to the frame f it was rewritten to.
func xsums4(f []byte, k *xkey) (ipSum, l4Sum uint16) {
	var old [12]byte
	binary.LittleEndian.PutUint64(old[:], k.addrs)
	binary.LittleEndian.PutUint32(old[8:], uint32(k.ports))
	return checksum.Fold(checksum.Changes(old[:8], f[xHdr:xHdr+8]) + ttlChange),
		checksum.Fold(checksum.Changes(old[:], f[xHdr:xHdr+12]))
}

// ttlChange is what the TTL's -1 adds to the IPv4 header checksum's sum:
// ~m + (m - 0x100) for the word m it shares with the protocol.
const ttlChange = 0xffff - 0x100

// xfill makes sl the slot of x's flow, which the full path just sent as f
// (its addresses' new low words naddrs, its ports at ports); the checksum
// sums are the caller's.
func (w *Worker) xfill(sl *xslot, f []byte, x *xframe, tk conntrack.Ticket, naddrs uint64, ports int) {
	*sl = xslot{addrs: x.key.addrs, ports: x.key.ports, mac: x.key.mac, ticket: tk, stats: w.xb.stats,
		limit: uint16(min(w.xb.limit, 0xffff)), xout: xoutOf(f, w.xb.out), naddrs: naddrs,
		nports: binary.LittleEndian.Uint32(f[ports:])}
}

// xoutOf is the xout of frame f, just sent to side out (the checksum's
// change is the caller's).
func xoutOf(f []byte, out side) xout {
	return xout{dmac0: binary.LittleEndian.Uint32(f[0:]), dmac1: binary.LittleEndian.Uint16(f[4:]), out: out}
}

// srcMAC is the source MAC of a frame sent to side out.
func (t *table) srcMAC(out side) *packet.MAC {
	if out == toClient {
		return &t.upMAC
	}
	return &t.downMAC
}

// xreset empties the express table when the configuration is another than
// the one its flows were handled under (a backend, a MAC, an MTU may have
// changed): configurations change seldom, packets do not.
func (w *Worker) xreset(t *table) {
	if w.xcfg != t {
		clear(w.xslots)
		clear(w.x6slots)
		clear(w.xused)
		clear(w.x6used)
		w.xcfg = t
	}
}

// xbuild is what forward and reply tell remember of a packet they sent:
// where it went, the way out's largest IP length, the backend's counters.
type xbuild struct {
	ok    bool
	out   side
	limit int
	stats *BackendStats
}
