package dataplane

import (
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/snat"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
)

// side is where a handled packet goes.
type side int8

const (
	drop side = iota
	toBackend
	toClient
	back // an answer the load balancer made (echo reply, ICMP error): out the way it came
)

// flowHashSeed is fixed so that every instance picks the same backend for a
// flow from the same Maglev table.
const flowHashSeed = 0x5c4d1b

// tcpIPHeaders is what an MSS leaves out of a packet: IP and TCP headers.
func tcpIPHeaders(v6 bool) int {
	if v6 {
		return 60
	}
	return 40
}

var decodeDrop = [packet.NumResults]Drop{
	packet.ErrTruncated: DropTruncated, packet.ErrNotIP: DropNotIP, packet.ErrBadHeader: DropBadHeader,
	packet.ErrFragment: DropFragment, packet.ErrProto: DropUnsupportedProto,
}

// handle rewrites the current frame (w.cur) in place and says where it goes;
// backendSide is true when it came in on the backend interface's socket. It
// does not allocate and does not log.
func (w *Worker) handle(t *table, now int64, backendSide bool) side {
	p := &w.pkt
	w.decoded = false
	if r := packet.Decode(w.cur.frame(), p); r != packet.OK {
		w.drop(decodeDrop[r])
		return drop
	}
	w.decoded = true
	if p.TTL <= 1 {
		w.drop(DropTTLExceeded)
		return drop
	}
	if p.Proto.IsICMP() {
		return w.icmp(t, now, backendSide)
	}
	n := p.Len()
	var tup packet.Tuple
	p.TupleTo(&tup)
	if svc, ok := t.services.get(tup.Dst, tup.DstPort, tup.Proto); ok {
		return w.forward(t, svc, &tup, n, now, backendSide)
	}
	return w.reply(t, &tup, n, now, backendSide)
}

// forward sends a client's packet to its flow's backend, as the service's
// mode wants it: NAT rewrites the destination, full-NAT the source too,
// DSR changes only the MACs, IPIP wraps it in an outer header.
func (w *Worker) forward(t *table, svc *service, tup *packet.Tuple, n int, now int64, backendSide bool) side {
	p := &w.pkt
	be, peer, peerPort := w.forwardBackend(t, svc, tup, n, now)
	if be == nil {
		return drop
	}
	if be.mac == (packet.MAC{}) {
		w.drop(DropNoNeighbour)
		return drop
	}
	overhead := 0
	if svc.mode == fwdmode.DSRIPIP {
		overhead = packet.IPIPOverhead
	}
	if n+overhead > t.downMTU {
		return w.tooBig(t, t.downMTU-overhead, tup.Dst, backendSide)
	}
	w.clampMSS(t, t.downMTU-overhead, !svc.mode.DSR())
	switch svc.mode {
	case fwdmode.NAT:
		p.SetDst(be.addr, be.port)
	case fwdmode.FullNAT:
		p.SetDst(be.addr, be.port)
		p.SetSrc(peer, peerPort)
	}
	w.toBackend(t, svc.mode, tup, be)
	w.beCounts.add(be.stats, 1, uint64(n), 0)
	w.counters.n[cForwarded]++
	w.xb = xbuild{ok: svc.mode != fwdmode.DSRIPIP, out: toBackend, limit: t.downMTU - overhead, stats: be.stats}
	return toBackend
}

// toBackend finishes a packet for a backend: one hop less, then
// encapsulated (dsr-ipip, fwd names the flow) or just re-addressed.
func (w *Worker) toBackend(t *table, mode fwdmode.Mode, fwd *packet.Tuple, be *backend) {
	w.pkt.DecTTL()
	if mode == fwdmode.DSRIPIP {
		w.encap(t, fwd, be)
		return
	}
	w.pkt.SetMACs(t.downMAC, be.mac)
}

// encap wraps the current frame for a dsr-ipip backend. The outer source
// is a per-flow address (172.16.0.0/16 from the client's address and port,
// as Katran does), so the backend's RSS still spreads flows over queues.
func (w *Worker) encap(t *table, fwd *packet.Tuple, be *backend) {
	h := fwd.Hash(flowHashSeed)
	src := packet.Addr{10: 0xff, 11: 0xff, 12: 172, 13: 16, 14: byte(h >> 8), 15: byte(h)}
	f := w.pkt.EncapIPIP(w.cur.chunk, w.cur.off, src, be.addr, t.downMAC, be.mac)
	w.cur.off -= packet.IPIPOverhead
	w.cur.n = len(f)
}

// clampMSS lowers a SYN's MSS to the operator's clamp and, where the peer's
// segments will arrive over the load balancer's link (linkBound), to what
// that link takes: the load balancer cannot answer for frames its own NIC
// drops as too large.
func (w *Worker) clampMSS(t *table, mtu int, linkBound bool) {
	p := &w.pkt
	if p.Proto != packet.ProtoTCP || p.Seg.Flags&packet.FlagSYN == 0 {
		return
	}
	limit := uint16(0xffff)
	if t.mssClamp > 0 {
		limit = t.mssClamp
	}
	if linkBound {
		limit = min(limit, uint16(mtu-tcpIPHeaders(p.V6)))
	}
	p.ClampMSS(limit)
}

// reply reverse-translates a backend's packet to its client. Replies are
// only taken from where the backend is: the backend interface (two-arm)
// and the backend's next-hop MAC (one-arm, where the interface is shared).
func (w *Worker) reply(t *table, tup *packet.Tuple, n int, now int64, backendSide bool) side {
	p := &w.pkt
	ep, _ := t.endpoints.get(tup.Src, tup.SrcPort, tup.Proto)
	if ep == nil {
		w.drop(DropNoFlow)
		return drop
	}
	if !w.fromBackend(ep, backendSide) {
		w.drop(DropSpoofedReply)
		return drop
	}
	hit, ok := w.flows.Reply(tup, &p.Seg, n, now)
	if !ok {
		rebuilt, ok := w.rebuild(t, ep, *tup, n, now)
		if !ok {
			return drop
		}
		hit = &rebuilt
	}
	if n > t.upMTU {
		return w.tooBig(t, t.upMTU, t.lbAddr(p.V6), backendSide)
	}
	w.clampMSS(t, t.upMTU, true)
	p.SetSrc(hit.VIP, hit.VIPPort)
	if hit.Peer != tup.Dst || hit.PeerPort != tup.DstPort { // full-NAT: back to the real client
		p.SetDst(hit.Peer, hit.PeerPort)
	}
	p.DecTTL()
	p.SetMACs(t.upMAC, hit.ClientMAC)
	w.xb = xbuild{ok: true, out: toClient, limit: t.upMTU}
	if be := t.backends.get(hit.Backend); be != nil {
		w.beCounts.add(be.stats, 1, uint64(n), 0)
		w.xb.stats = be.stats
	}
	w.counters.n[cReplied]++
	return toClient
}

// fromBackend checks that a backend's packet came from where the backend
// is: its interface in two-arm mode, its next hop's MAC in one-arm mode.
func (w *Worker) fromBackend(ep *endpoint, backendSide bool) bool {
	if w.up != w.down {
		return backendSide
	}
	return packet.MAC(w.cur.frame()[6:12]) == ep.mac
}

// forwardBackend returns the backend of a tracked flow, or picks one for a
// new flow and tracks it, with the address and port the backend sees as
// the client (full-NAT: allocated here). A flow whose backend was deleted
// is re-balanced.
func (w *Worker) forwardBackend(t *table, svc *service, tup *packet.Tuple, n int, now int64) (*backend, packet.Addr, uint16) {
	ct := w.eng.ct
	if hit, ok := w.flows.Forward(tup, &w.pkt.Seg, n, now); ok {
		if be := t.backends.get(hit.Backend); be != nil && be.service == svc.id {
			return be, hit.Peer, hit.PeerPort
		}
	}
	i := svc.maglev.Lookup(tup.Hash(flowHashSeed))
	if i < 0 {
		w.drop(DropNoBackend)
		return nil, packet.Addr{}, 0
	}
	be := svc.backends[i]
	peer, peerPort := tup.Src, tup.SrcPort
	sb := snat.Backend{Addr: be.addr, Port: be.port, Proto: tup.Proto}
	if svc.mode == fwdmode.FullNAT {
		shard := ct.Shard(tup.Src, tup.SrcPort, tup.Proto)
		sameShard := func(a packet.Addr, p uint16) bool { return ct.Shard(a, p, tup.Proto) == shard }
		var ok bool
		if peer, peerPort, ok = w.eng.snat.Alloc(sb, sameShard); !ok {
			w.drop(DropSNATExhausted)
			return nil, packet.Addr{}, 0
		}
	}
	rev := packet.Tuple{Src: be.addr, Dst: peer, SrcPort: be.port, DstPort: peerPort, Proto: tup.Proto}
	nf := conntrack.NewFlow{Backend: be.id, ClientMAC: packet.MAC(w.cur.frame()[6:12]), OneWay: svc.mode.DSR()}
	if !ct.Insert(*tup, rev, nf, &w.pkt.Seg, n, now) {
		if svc.mode == fwdmode.FullNAT {
			w.eng.snat.Free(peer, peerPort, sb)
		}
		w.drop(DropCollision)
		return nil, packet.Addr{}, 0
	}
	w.beCounts.add(be.stats, 0, 0, 1)
	w.counters.n[cNewFlows]++
	return be, peer, peerPort
}

// drop counts a drop and remembers its reason for a tap.
func (w *Worker) drop(reason Drop) {
	w.counters.n[cDrops+counter(reason)]++
	w.why = reason
}

// verdictNames are what a tap records: forward, reply, answer, then drop
// reasons.
var verdictNames = func() (v [3 + NumDrops]string) {
	v[0], v[1], v[2] = "forward", "reply", "answer"
	for i := Drop(0); i < NumDrops; i++ {
		v[3+int(i)] = "drop:" + i.String()
	}
	return
}()
