package dataplane

import (
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
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

var decodeDrop = [packet.NumResults]Drop{
	packet.ErrTruncated: DropTruncated, packet.ErrNotIPv4: DropNotIPv4, packet.ErrBadHeader: DropBadHeader,
	packet.ErrFragment: DropFragment, packet.ErrProto: DropUnsupportedProto,
}

// handle rewrites one frame in place and says where it goes; backendSide is
// true when it came in on the backend interface's socket. It does not
// allocate and does not log.
func (w *Worker) handle(t *table, frame []byte, now int64, backendSide bool) side {
	p := &w.pkt
	w.decoded = false
	if r := packet.Decode(frame, p); r != packet.OK {
		w.drop(decodeDrop[r])
		return drop
	}
	w.decoded = true
	if p.TTL <= 1 {
		w.drop(DropTTLExceeded)
		return drop
	}
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
		p.DecTTL()
		be.stats.Packets.Add(1)
		be.stats.Bytes.Add(uint64(n))
		w.counters.forwarded.Add(1)
		return toBackend
	}
	return w.reply(t, frame, tup, n, now, backendSide)
}

// reply reverse-translates a backend's packet to its client. Replies are
// only taken from where the backend is: the backend interface (two-arm)
// and the backend's next-hop MAC (one-arm, where the interface is shared).
func (w *Worker) reply(t *table, frame []byte, tup packet.Tuple, n int, now int64, backendSide bool) side {
	p := &w.pkt
	ep := t.endpoints[keyOf(tup.Src, tup.SrcPort, tup.Proto)]
	if ep == nil {
		w.drop(DropNoFlow)
		return drop
	}
	if w.up != w.down && !backendSide || w.up == w.down && packet.MAC(frame[6:12]) != ep.mac {
		w.drop(DropSpoofedReply)
		return drop
	}
	hit, ok := w.eng.ct.Reply(tup, &p.Seg, n, now)
	if !ok {
		if hit, ok = w.rebuild(t, ep, tup, n, now); !ok {
			return drop
		}
	}
	p.SetSrc(hit.VIP, hit.VIPPort)
	p.SetMACs(t.upMAC, hit.ClientMAC)
	p.DecTTL()
	if be := t.backends[hit.Backend]; be != nil {
		be.stats.Packets.Add(1)
		be.stats.Bytes.Add(uint64(n))
	}
	w.counters.replied.Add(1)
	return toClient
}

// rebuild recreates a flow the table lost (a daemon restart empties it) from
// a backend's packet: if exactly one service holding this backend would pick
// it for (client, VIP) with Maglev, the flow is that service's. A client
// that has acked everything sends nothing, so without this a download
// stalls until the client times out.
func (w *Worker) rebuild(t *table, ep *endpoint, rev packet.Tuple, n int, now int64) (conntrack.Hit, bool) {
	var pick *backend
	var fwd packet.Tuple
	for _, s := range ep.services {
		f := packet.Tuple{Src: rev.Dst, Dst: s.vip, SrcPort: rev.DstPort, DstPort: s.port, Proto: rev.Proto}
		i := s.maglev.Lookup(f.Hash(flowHashSeed))
		if i < 0 || s.backends[i].addr != rev.Src || s.backends[i].port != rev.SrcPort {
			continue
		}
		if pick != nil { // two services would claim it: not ours to guess
			w.drop(DropNoFlow)
			return conntrack.Hit{}, false
		}
		pick, fwd = s.backends[i], f
	}
	if pick == nil {
		w.drop(DropNoFlow)
		return conntrack.Hit{}, false
	}
	mac, ok := t.hops.mac(rev.Dst)
	if !ok {
		w.eng.wantHop(rev.Dst)
		w.drop(DropNoClientHop)
		return conntrack.Hit{}, false
	}
	if !w.eng.ct.Insert(fwd, rev, pick.id, mac, &w.pkt.Seg, n, now, true) {
		w.drop(DropCollision)
		return conntrack.Hit{}, false
	}
	pick.stats.Flows.Add(1)
	w.counters.newFlows.Add(1)
	w.counters.rebuilt.Add(1)
	return conntrack.Hit{Backend: pick.id, ClientMAC: mac, VIP: fwd.Dst, VIPPort: fwd.DstPort}, true
}

// forwardBackend returns the backend of a tracked flow, or picks one for a
// new flow and tracks it. A flow whose backend was deleted is re-balanced.
func (w *Worker) forwardBackend(t *table, svc *service, tup packet.Tuple, frame []byte, n int, now int64) *backend {
	ct := w.eng.ct
	if hit, ok := ct.Forward(tup, &w.pkt.Seg, n, now); ok {
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
	if !ct.Insert(tup, rev, be.id, packet.MAC(frame[6:12]), &w.pkt.Seg, n, now, false) {
		w.drop(DropCollision)
		return nil
	}
	be.stats.Flows.Add(1)
	w.counters.newFlows.Add(1)
	return be
}

// drop counts a drop and remembers its reason for a tap.
func (w *Worker) drop(reason Drop) {
	w.counters.drops[reason].Add(1)
	w.why = reason
}

// verdictNames are what a tap records: forward, reply, then drop reasons.
var verdictNames = func() (v [2 + NumDrops]string) {
	v[0], v[1] = "forward", "reply"
	for i := Drop(0); i < NumDrops; i++ {
		v[2+int(i)] = "drop:" + i.String()
	}
	return
}()
