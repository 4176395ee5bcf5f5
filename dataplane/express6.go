package dataplane

import (
	"encoding/binary"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/checksum"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// IPv6 on the express path (see express.go): the same, for an IPv6 header
// followed by TCP or UDP (no extension header). A slot is two cache lines:
// IPv4's, whose address words hold the addresses' low 4 bytes, and the
// upper 12 bytes of each, old and new. There is no header checksum, and a
// UDP checksum is never 0.

// Frame offsets of an IPv6 header and what follows it.
const (
	x6Hop  = 14 + 7
	x6Addr = 14 + 8 // source and destination address, then the ports: 36 bytes
	x6L4   = 14 + 40
)

// x6slot is the remembered handling of one IPv6 flow.
type x6slot struct {
	xslot
	hi  [3]uint64 // the key's upper 12 bytes of each address, as in xframe.hi
	nhi [3]uint64 // the new ones
	_   [16]byte
}

// xparse6 reads an IPv6 express candidate: no extension header, hop limit
// above 1, TCP (data offset sane) or UDP.
func xparse6(f []byte, backendSide bool, x *xframe) bool {
	x.ipLen = 0
	if len(f) < x6L4+8 || f[12] != 0x86 || f[13] != 0xdd || f[14]>>4 != 6 || f[x6Hop] <= 1 {
		return false
	}
	total := 40 + int(binary.BigEndian.Uint16(f[14+4:]))
	if 14+total > len(f) || !xparseL4(f[x6L4:14+total], ipproto.Proto(f[14+6]), x) {
		return false
	}
	x.ipLen, x.v6 = total, true
	x.key = xkeyOf(x6low(f[x6Addr:]), f, x6L4, x.proto, backendSide)
	x.hi = x6high(f[x6Addr:])
	return true
}

// x6low and x6high split a source and a destination address (a, 32
// bytes): their last 4 bytes each, and their first 12.
func x6low(a []byte) uint64 {
	return uint64(binary.LittleEndian.Uint32(a[12:])) | uint64(binary.LittleEndian.Uint32(a[28:]))<<32
}

func x6high(a []byte) [3]uint64 {
	return [3]uint64{binary.LittleEndian.Uint64(a[0:]),
		uint64(binary.LittleEndian.Uint32(a[8:])) | uint64(binary.LittleEndian.Uint32(a[16:]))<<32,
		binary.LittleEndian.Uint64(a[20:])}
}

// putX6 writes into a the addresses split as x6low and x6high did.
func putX6(a []byte, low uint64, hi *[3]uint64) {
	binary.LittleEndian.PutUint64(a[0:], hi[0])
	binary.LittleEndian.PutUint32(a[8:], uint32(hi[1]))
	binary.LittleEndian.PutUint32(a[12:], uint32(low))
	binary.LittleEndian.PutUint32(a[16:], uint32(hi[1]>>32))
	binary.LittleEndian.PutUint64(a[20:], hi[2])
	binary.LittleEndian.PutUint32(a[28:], uint32(low>>32))
}

// x6slotOf is xslotOf for an IPv6 flow: the key and the addresses' upper
// bytes.
func (w *Worker) x6slotOf(x *xframe, create bool) *x6slot {
	k := x.key
	k.addrs ^= x.hi[0] ^ x.hi[1]*0x9e3779b97f4a7c15 ^ x.hi[2]*0xc2b2ae3d27d4eb4f
	b := k.slot(uint64(len(w.x6slots)-1)) &^ (xways - 1)
	if create {
		w.x6used.mark(b)
	} else if !w.x6used.has(b) {
		return nil
	}
	free := -1
	for i := b; i < b+xways; i++ {
		sl := &w.x6slots[i]
		if sl.addrs == x.key.addrs && sl.ports == x.key.ports && sl.mac == x.key.mac && sl.hi == x.hi {
			return sl
		}
		if sl.ports == 0 && free < 0 {
			free = int(i)
		}
	}
	if !create {
		return nil
	}
	return &w.x6slots[w.xpick(b, free)]
}

// express6 is express for an IPv6 frame.
func (w *Worker) express6(t *table, now int64, f []byte, backendSide bool, x *xframe) (side, bool) {
	if !xparse6(f, backendSide, x) {
		return drop, false
	}
	sl := w.x6slotOf(x, false)
	if sl == nil || x.ipLen > int(sl.limit) ||
		!w.flows.Again(sl.ticket, x.proto, &x.seg, x.ipLen, now) {
		return drop, false
	}
	f[x6Hop]--
	putX6(f[x6Addr:], sl.naddrs, &sl.nhi)
	binary.LittleEndian.PutUint32(f[x6L4:], sl.nports)
	return w.xfinish(t, f, x6L4, x, &sl.xout, sl.stats, false), true
}

// remember6 is remember for an IPv6 frame.
func (w *Worker) remember6(f []byte, x *xframe, tk conntrack.Ticket) {
	sl := w.x6slotOf(x, true)
	w.xfill(&sl.xslot, f, x, tk, x6low(f[x6Addr:]), x6L4)
	sl.hi, sl.nhi = x.hi, x6high(f[x6Addr:])
	// The addresses and ports before handling, from the key.
	var old [36]byte
	putX6(old[:], x.key.addrs, &x.hi)
	binary.LittleEndian.PutUint32(old[32:], uint32(x.key.ports))
	sl.l4Sum = checksum.Fold(checksum.Changes(old[:], f[x6Addr:x6Addr+36]))
}
