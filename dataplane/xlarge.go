package dataplane

import (
	"encoding/binary"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// The worker's side of the express records (xrecord.go): the pipeline
// over a batch, a record's hit, and making one.

// xbatch is what the pipeline's stages leave for the later ones, per frame
// of the batch.
type xbatch struct {
	x   [BatchSize]xframe
	b   [BatchSize]uint64 // the record bucket
	tag [BatchSize]uint32 // the key's tag, 0: the frame has no key
	rec [BatchSize]int32  // the record whose tag matched, -1: none
}

// xlargeSet turns the records on or off for the batch. Turning them on or
// off, and a new configuration, makes every record stale.
func (w *Worker) xlargeSet(t *table, on bool, now int64) {
	if w.xr != nil && (on != w.xlarge || on && w.xrcfg != t) {
		w.xr.renew(w.eng.ct, now)
		w.xrcfg = t
	}
	w.xlarge = on
}

// xretry: after xretry batches in a row in which records found no frame
// they could key (IPv6 traffic, which records do not take), the worker
// takes the plain pipeline, whose stages cost less (~15 ns a packet at
// 32k IPv6 flows), and tries records again every xretry batches.
const xretry = 16

// pumpRecords handles batch frames 0..k-1 from in with records, as a
// pipeline (see xrecord.go): frame i+3g's tags, i+2g's record and i+g's
// entry generation are asked for while frame i is handled. It returns
// how many frames had a key.
func (w *Worker) pumpRecords(t *table, now int64, in Queue, k int) (keyed int) {
	const g = 6
	backendSide := in == w.down
	for i := 0; i < k+3*g; i++ {
		if i < k && w.xkeyStage(t, in, i, backendSide) {
			keyed++
		}
		if j := i - g; j >= 0 && j < k {
			w.xrecStage(t, in, j)
		}
		if j := i - 2*g; j >= 0 && j < k {
			w.xpinStage(j)
		}
		if j := i - 3*g; j >= 0 {
			w.oneRec(t, now, in, j)
		}
	}
	return keyed
}

// xkeyStage parses frame i and asks for its bucket's tags, and says
// whether the frame has a key; a frame with none (IPv6, ICMP) will take
// the full path, which asks for the table's slot at once, as far ahead as
// the pipeline without records does.
func (w *Worker) xkeyStage(t *table, in Queue, i int, backendSide bool) bool {
	d := w.batch[i]
	chunk, off := in.Buffer(d)
	f := chunk[off:min(off+int(d.Len), len(chunk))]
	xb := w.xbatch
	x := &xb.x[i]
	xb.rec[i], xb.tag[i], w.probed[i] = -1, 0, false
	// A frame the express path may not take (a FIN, say) is keyed too:
	// its record's counts must reach the table before the frame does.
	if !xparse(f, backendSide, x) && !xkeyLoose(f, backendSide, &x.key) {
		w.probeSlot(t, in, i)
		return false
	}
	xb.b[i], xb.tag[i] = w.xr.bucket(&x.key)
	w.xr.prefetchTags(xb.b[i])
	return true
}

// xrecStage finds frame j's record by its tag and asks for it; a keyed
// frame with none will take the full path, which asks for the table's
// slot. The entry of a frame without a key is asked for here.
func (w *Worker) xrecStage(t *table, in Queue, j int) {
	xb := w.xbatch
	tag := xb.tag[j]
	if tag == 0 {
		if w.probed[j] {
			w.eng.ct.PrefetchEntry(w.probes[j])
		}
		return
	}
	if r := w.xr.find(xb.b[j], tag); r >= 0 {
		xb.rec[j] = r
		w.xr.prefetchRec(r)
		return
	}
	w.probeSlot(t, in, j)
}

// xpinStage asks for the entry generation frame j's record names, or for
// the table entry the full path will read of a keyed frame.
func (w *Worker) xpinStage(j int) {
	xb := w.xbatch
	if r := xb.rec[j]; r >= 0 {
		w.eng.ct.PrefetchPin(&w.xr.recs[r].pin)
	} else if xb.tag[j] != 0 && w.probed[j] {
		w.eng.ct.PrefetchEntry(w.probes[j])
	}
}

// oneRec handles batch frame j: from its record if it may, else by the
// full path (which makes a record of it when it can).
func (w *Worker) oneRec(t *table, now int64, in Queue, j int) {
	d := w.batch[j]
	chunk, off := in.Buffer(d)
	x := &w.xbatch.x[j]
	if r := w.xbatch.rec[j]; r >= 0 {
		f := chunk[off : off+int(d.Len)]
		if to, ok := w.xrecHit(t, now, f, x, r); ok {
			w.send(in, w.queueTo(to), d.Addr, f)
			return
		}
	}
	w.full(t, nil, now, in, d, chunk, off, x)
}

// xrecHit handles frame f, parsed into x, from record i if that holds its
// flow and the flow may take it; false leaves the frame to the full path
// untouched, after the record's deferred counts went to the table.
func (w *Worker) xrecHit(t *table, now int64, f []byte, x *xframe, i int32) (side, bool) {
	r, ct := w.xr, w.eng.ct
	rec := &r.recs[i]
	if !r.holds(rec, &x.key) {
		return drop, false
	}
	if x.ipLen == 0 || x.ipLen > int(rec.limit) || !ct.Current(&rec.pin) {
		ct.Flush(&rec.pin, now)
		return drop, false
	}
	// No stale rule: flushAll empties the records every FlushAfter.
	if ct.Count(&rec.pin, x.proto, &x.seg, x.ipLen, now, 0) {
		r.counted(i, rec)
	}
	xrewrite4(f, rec.ipSum, rec.naddrs, rec.nports)
	return w.xfinish(t, f, xL4, x, &rec.xout, r.stats[rec.stats], true), true
}

// rememberRec makes a record of how the full path just handled the frame
// x was parsed from (now f), as remember makes an express slot: IPv4, sent
// on to a backend or a client, its flow cacheable in the table.
func (w *Worker) rememberRec(now int64, f []byte, x *xframe) {
	if !w.xb.ok || x.v6 {
		return
	}
	pin, ok := w.flows.LastPin()
	if !ok {
		return
	}
	si, ok := w.xr.statsIndex(w.xb.stats)
	if !ok {
		return
	}
	rec := w.xr.place(w.eng.ct, &x.key, now)
	if rec == nil {
		return
	}
	*rec = xrec{addrs: x.key.addrs, ports: x.key.ports, mac: x.key.mac, epoch: w.xr.epoch, dirty: rec.dirty,
		naddrs: binary.LittleEndian.Uint64(f[xHdr:]), nports: binary.LittleEndian.Uint32(f[xHdr+8:]),
		xout: xoutOf(f, w.xb.out), limit: uint16(min(w.xb.limit, 0xffff)), stats: si, pin: pin}
	rec.ipSum, rec.l4Sum = xsums4(f, &x.key)
}

// xkeyLoose keys an IPv4 TCP or UDP frame (header without options) that
// xparse refused: a SYN, FIN or RST, a fragment, a last hop.
func xkeyLoose(f []byte, backendSide bool, k *xkey) bool {
	if len(f) < xL4+4 || f[12] != 0x08 || f[13] != 0 || f[14] != 0x45 {
		return false
	}
	proto := ipproto.Proto(f[23])
	if proto != packet.ProtoTCP && proto != packet.ProtoUDP {
		return false
	}
	*k = xkeyOf(binary.LittleEndian.Uint64(f[xHdr:]), f, xHdr+8, proto, backendSide)
	return true
}
