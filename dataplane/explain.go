package dataplane

import (
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
)

// Explanation is what the workers would do with a client's packet of a
// flow, read from the live tables without sending anything: the service,
// the tracked flow if there is one, else the backend Maglev picks for a
// new flow, and the rewrite.
type Explanation struct {
	Service     uint32 // 0: no service at the destination (the packet is not steered)
	Mode        fwdmode.Mode
	Tracked     bool
	Flow        conntrack.Entry // when Tracked
	Backend     uint32          // 0: none takes new flows (no_backend)
	BackendTo   packet.Addr     // the backend's address and port
	BackendPort uint16
	BackendMAC  packet.MAC // zero: next hop unresolved (no_neighbour)
	// The rewritten packet's addresses and MACs. A new full-NAT flow's
	// source port is allocated when the flow starts: SrcPort is then 0.
	Src, Dst         packet.Addr
	SrcPort, DstPort uint16
	SrcMAC, DstMAC   packet.MAC
}

// Explain says what a client's packet with tuple fwd meets.
func (e *Engine) Explain(fwd packet.Tuple) Explanation {
	t := e.cfg.Load()
	svc, ok := t.services.get(fwd.Dst, fwd.DstPort, fwd.Proto)
	if !ok {
		return Explanation{}
	}
	x := Explanation{Service: svc.id, Mode: svc.mode, Src: fwd.Src, SrcPort: fwd.SrcPort, Dst: fwd.Dst, DstPort: fwd.DstPort}
	var be *backend
	if en, found := e.ct.Lookup(fwd, false); found {
		if b := t.backends.get(en.Backend); b != nil && b.service == svc.id {
			x.Tracked, x.Flow, be = true, en, b
			x.Src, x.SrcPort = en.Rev.Dst, en.Rev.DstPort
		}
	}
	if be == nil {
		i := svc.maglev.Lookup(fwd.Hash(flowHashSeed))
		if i < 0 {
			return x
		}
		be = svc.backends[i]
		if svc.mode == fwdmode.FullNAT {
			x.Src, x.SrcPort = packet.Addr{}, 0
			for _, a := range e.snat.Addrs() {
				if a.Is4() == fwd.Src.Is4() {
					x.Src = a
					break
				}
			}
		}
	}
	x.Backend, x.BackendTo, x.BackendPort, x.BackendMAC = be.id, be.addr, be.port, be.mac
	if !svc.mode.DSR() {
		x.Dst, x.DstPort = be.addr, be.port
	}
	x.SrcMAC, x.DstMAC = t.downMAC, be.mac
	return x
}
