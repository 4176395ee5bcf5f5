package dataplane

import (
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
)

// rebuild recreates a flow the table lost (a daemon restart empties it) from
// a backend's packet: if exactly one NAT service holding this backend would
// pick it for (client, VIP) with Maglev, the flow is that service's. A
// client that has acked everything sends nothing, so without this a
// download stalls until the client times out. Full-NAT flows cannot be
// rebuilt (the backend's packet does not name the client); DSR replies
// never come here.
func (w *Worker) rebuild(t *table, ep *endpoint, rev packet.Tuple, n int, now int64) (conntrack.Hit, bool) {
	var pick *backend
	var fwd packet.Tuple
	for _, s := range ep.services {
		if s.mode != fwdmode.NAT {
			continue
		}
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
	nf := conntrack.NewFlow{Backend: pick.id, ClientMAC: mac, FromReply: true}
	if !w.eng.ct.Insert(fwd, rev, nf, &w.pkt.Seg, n, now) {
		w.drop(DropCollision)
		return conntrack.Hit{}, false
	}
	w.beCounts.add(pick.stats, 0, 0, 1)
	w.counters.n[cNewFlows]++
	w.counters.n[cRebuilt]++
	return conntrack.Hit{Backend: pick.id, ClientMAC: mac, VIP: fwd.Dst, VIPPort: fwd.DstPort,
		Peer: fwd.Src, PeerPort: fwd.SrcPort}, true
}
