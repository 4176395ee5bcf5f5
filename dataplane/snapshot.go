package dataplane

import (
	"io"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/snat"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
)

// WriteSnapshot writes the tracked flows (conntrack.Table.WriteSnapshot);
// call it with the workers stopped.
func (e *Engine) WriteSnapshot(w io.Writer) (int, error) { return e.ct.WriteSnapshot(w) }

// RestoreSnapshot reads flows saved by WriteSnapshot into the empty table,
// keeping those the installed table still serves the same way: the backend
// exists and belongs to the flow's service, the service's mode is the
// flow's (NAT, full NAT, DSR), and a full-NAT flow's source address and
// port are still this daemon's SNAT address and range (they are reserved
// again). Call it after Install and before the workers start.
func (e *Engine) RestoreSnapshot(r io.Reader, now int64) (restored, dropped int, err error) {
	t := e.cfg.Load()
	keep := func(en *conntrack.Entry) bool {
		be := t.backends.get(en.Backend)
		if be == nil || be.addr != en.Rev.Src || be.port != en.Rev.SrcPort {
			return false
		}
		svc, ok := t.services.get(en.Fwd.Dst, en.Fwd.DstPort, en.Fwd.Proto)
		if !ok || svc.id != be.service || svc.mode.DSR() != en.OneWay {
			return false
		}
		if en.FullNAT() != (svc.mode == fwdmode.FullNAT) {
			return false
		}
		// A kept full-NAT flow's port is taken again here; should the
		// table then have no room for it, its OnRemove frees the port.
		return !en.FullNAT() || e.snat.Reserve(en.Rev.Dst, en.Rev.DstPort, snat.Backend{Addr: en.Rev.Src, Port: en.Rev.SrcPort,
			Proto: en.Rev.Proto})
	}
	return e.ct.Restore(r, now, keep)
}
