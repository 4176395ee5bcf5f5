package dataplane

import (
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
)

// icmp answers echo requests to VIPs and passes on ICMP errors that quote
// a packet of a tracked flow, translated for the other side. Everything
// else the XDP program does not steer; what still arrives is dropped.
func (w *Worker) icmp(t *table, now int64, backendSide bool) side {
	p := &w.pkt
	if !p.ICMP.Error {
		if !p.IsEchoRequest() || !t.vips[p.Dst] {
			w.drop(DropUnsupportedProto)
			return drop
		}
		p.EchoReply(w.sideMAC(t, backendSide))
		w.cur.n = len(p.Frame)
		w.counters.n[cEchoReplies]++
		return back
	}
	if t.vips[p.Dst] {
		return w.icmpToBackend(t)
	}
	return w.icmpToClient(t, backendSide)
}

// icmpToBackend passes on an error about a packet the VIP sent (a router on
// the client path says a reply was too big): it quotes VIP -> client, the
// reverse of a flow's client -> VIP. The backend gets it as if about its
// own packet.
func (w *Worker) icmpToBackend(t *table) side {
	p := &w.pkt
	fwd := p.ICMP.Inner.Reverse()
	e, ok := w.eng.ct.Lookup(fwd, false)
	svc, _ := t.services.get(fwd.Dst, fwd.DstPort, fwd.Proto)
	be := t.backends.get(e.Backend)
	if !ok || svc == nil || be == nil {
		w.drop(DropICMPNoFlow)
		return drop
	}
	if be.mac == (packet.MAC{}) {
		w.drop(DropNoNeighbour)
		return drop
	}
	switch svc.mode {
	case fwdmode.NAT:
		p.SetDstAddr(be.addr)
		p.SetInnerSrc(be.addr, be.port)
		p.FixICMP()
	case fwdmode.FullNAT:
		// From the load balancer: the backend may have no route to the router.
		p.SetSrcAddr(t.lbAddr(p.V6))
		p.SetDstAddr(be.addr)
		p.SetInnerSrc(be.addr, be.port)
		p.SetInnerDst(e.Rev.Dst, e.Rev.DstPort)
		p.FixICMP()
	}
	w.toBackend(t, svc.mode, &fwd, be)
	w.counters.n[cICMPTranslated]++
	return toBackend
}

// icmpToClient passes on a backend's error about a packet it got from the
// load balancer (a closed UDP port): it quotes client (or the full-NAT
// address) -> backend, the reverse of the flow's reply tuple. The client
// gets it from the VIP, about its own packet to the VIP.
func (w *Worker) icmpToClient(t *table, backendSide bool) side {
	p := &w.pkt
	in := p.ICMP.Inner
	ep, _ := t.endpoints.get(in.Dst, in.DstPort, in.Proto)
	var e conntrack.Entry
	ok := ep != nil
	if ok {
		e, ok = w.eng.ct.Lookup(in.Reverse(), true)
	}
	if !ok {
		w.drop(DropICMPNoFlow)
		return drop
	}
	if !w.fromBackend(ep, backendSide) {
		w.drop(DropSpoofedReply)
		return drop
	}
	p.SetSrcAddr(e.Fwd.Dst)
	p.SetDstAddr(e.Fwd.Src)
	p.SetInnerSrc(e.Fwd.Src, e.Fwd.SrcPort)
	p.SetInnerDst(e.Fwd.Dst, e.Fwd.DstPort)
	p.FixICMP()
	p.DecTTL()
	p.SetMACs(t.upMAC, e.ClientMAC)
	w.counters.n[cICMPTranslated]++
	return toClient
}

// tooBig answers a packet larger than the next link takes with ICMP
// fragmentation-needed or ICMPv6 packet-too-big (mtu: what fits) from src,
// when the sender forbade fragmenting (IPv6 always does); the load balancer
// does not fragment.
func (w *Worker) tooBig(t *table, mtu int, src packet.Addr, backendSide bool) side {
	p := &w.pkt
	if !p.DF() {
		w.drop(DropTooBig)
		return drop
	}
	w.cur.n = p.TooBig(mtu, src, w.sideMAC(t, backendSide))
	w.counters.n[cFragNeeded]++
	return back
}

// sideMAC is the load balancer's MAC on the side a packet came in on.
func (w *Worker) sideMAC(t *table, backendSide bool) packet.MAC {
	if backendSide && w.up != w.down {
		return t.downMAC
	}
	return t.upMAC
}

// lbAddr is the load balancer's backend-side address of a family.
func (t *table) lbAddr(v6 bool) packet.Addr {
	if v6 {
		return t.downAddr6
	}
	return t.downAddr
}
