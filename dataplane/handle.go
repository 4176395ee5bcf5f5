package dataplane

import (
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// side is where a handled packet goes.
type side int8

const (
	drop side = iota
	toBackend
	toClient
)

// flowHashSeed is fixed so that every instance picks the same backend for a
// flow from the same Maglev table.
const flowHashSeed = 0x5c4d1b

var decodeDrop = [packet.NumResults]int{
	packet.ErrTruncated: DropTruncated, packet.ErrNotIPv4: DropNotIPv4, packet.ErrBadHeader: DropBadHeader,
	packet.ErrFragment: DropFragment, packet.ErrProto: DropUnsupportedProto,
}

// handle rewrites one frame in place and says where it goes. It does not
// allocate and does not log.
func (w *Worker) handle(t *table, frame []byte, now int64) side {
	p := &w.pkt
	w.decoded = false
	if r := packet.Decode(frame, p); r != packet.OK {
		w.drop(decodeDrop[r])
		return drop
	}
	w.decoded = true
	n := p.Len()
	tup := p.Tuple()
	if svc, ok := t.services[keyOf(tup.Dst, tup.DstPort, tup.Proto)]; ok {
		be := w.forwardBackend(t, svc, tup, frame, n, now)
		if be == nil {
			return drop
		}
		if be.mac == (packet.MAC{}) {
			w.drop(DropNoNeighbour)
			return drop
		}
		p.SetDst(be.addr, be.port)
		p.SetMACs(t.downMAC, be.mac)
		be.stats.Packets.Add(1)
		be.stats.Bytes.Add(uint64(n))
		w.counters.forwarded.Add(1)
		return toBackend
	}
	hit, ok := w.eng.ct.Reply(tup, p.TCPFlags, n, now)
	if !ok {
		w.drop(DropNoFlow)
		return drop
	}
	p.SetSrc(hit.VIP, hit.VIPPort)
	p.SetMACs(t.upMAC, hit.ClientMAC)
	if be := t.backends[hit.Backend]; be != nil {
		be.stats.Packets.Add(1)
		be.stats.Bytes.Add(uint64(n))
	}
	w.counters.replied.Add(1)
	return toClient
}

// forwardBackend returns the backend of a tracked flow, or picks one for a
// new flow and tracks it. A flow whose backend was deleted is re-balanced.
func (w *Worker) forwardBackend(t *table, svc *service, tup packet.Tuple, frame []byte, n int, now int64) *backend {
	ct := w.eng.ct
	if hit, ok := ct.Forward(tup, w.pkt.TCPFlags, n, now); ok {
		if be := t.backends[hit.Backend]; be != nil && be.service == svc.id {
			return be
		}
	}
	i := svc.maglev.Lookup(tup.Hash(flowHashSeed))
	if i < 0 {
		w.drop(DropNoBackend)
		return nil
	}
	be := svc.backends[i]
	rev := packet.Tuple{Src: be.addr, Dst: tup.Src, SrcPort: be.port, DstPort: tup.SrcPort, Proto: tup.Proto}
	if !ct.Insert(tup, rev, be.id, packet.MAC(frame[6:12]), w.pkt.TCPFlags, n, now) {
		w.drop(DropCollision)
		return nil
	}
	be.stats.Flows.Add(1)
	w.counters.newFlows.Add(1)
	return be
}

// drop counts a drop and remembers its reason for a tap.
func (w *Worker) drop(reason int) {
	w.counters.drops[reason].Add(1)
	w.why = reason
}

// verdictNames are what a tap records: forward, reply, then drop reasons.
var verdictNames = func() (v [2 + NumDrops]string) {
	v[0], v[1] = "forward", "reply"
	for i, n := range DropNames {
		v[2+i] = "drop:" + n
	}
	return
}()
