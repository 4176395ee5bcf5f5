package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/internal/frame"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

var xdpActions = map[uint32]string{0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}

// Trace explains what the load balancer does with a flow's next packet
// from the client: the firewall rule that matches, the source's DoS
// state, the XDP program's action on a synthetic packet (run for real on
// the loaded program and maps: it is counted, and counts towards the
// source's DoS windows), then the tracked flow or Maglev's pick and the
// rewrite. Nothing is sent.
func (c *core) Trace(req api.TraceRequest) (api.Trace, error) {
	proto, err := ipproto.ParseL4(req.Proto)
	if err != nil {
		return api.Trace{}, fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	src, err1 := netip.ParseAddrPort(req.Src)
	dst, err2 := netip.ParseAddrPort(req.Dst)
	if err1 != nil || err2 != nil {
		return api.Trace{}, fmt.Errorf("%w: --src and --dst: want IP:PORT ([IPv6]:PORT for IPv6)", config.ErrInvalid)
	}
	src, dst = netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if src.Addr().Is4() != dst.Addr().Is4() {
		return api.Trace{}, fmt.Errorf("%w: source and destination are of two address families", config.ErrInvalid)
	}
	tr := api.Trace{Flow: fmt.Sprintf("%s %s -> %s", proto, src, dst), DoSBlocked: []uint32{}}
	st := c.store.State()
	c.traceFilters(&tr, st, proto, src, dst)
	fwd := packet.Tuple{Src: packet.AddrFrom(src.Addr()), Dst: packet.AddrFrom(dst.Addr()), SrcPort: src.Port(),
		DstPort: dst.Port(), Proto: proto}
	x := c.eng.Explain(fwd)
	if err := c.traceXDP(&tr, x, proto, src, dst); err != nil {
		return api.Trace{}, err
	}
	c.traceWorker(&tr, st, x)
	return tr, nil
}

// traceFilters finds the firewall rule (first in rule order, as the XDP
// program counts) and the DoS blocks that apply to the source.
func (c *core) traceFilters(tr *api.Trace, st *config.State, proto ipproto.Proto, src, dst netip.AddrPort) {
	tr.Firewall = "no rule matches"
	for _, r := range st.FirewallRules {
		if r.Network.Contains(src.Addr()) && (r.Proto == ipproto.Any || r.Proto == proto) &&
			r.SrcPorts.Contains(src.Port()) && r.DstPorts.Contains(dst.Port()) {
			tr.FirewallRule = r.ID
			tr.Firewall = fmt.Sprintf("rule %d drops it: deny %s from %s src ports %s dst ports %s", r.ID, r.Proto, r.Network,
				r.SrcPorts, r.DstPorts)
			break
		}
	}
	tr.DoS = "the source is not blocked"
	blocked, err := c.kern.DosBlocked()
	if err != nil {
		tr.DoS = "unknown: " + err.Error()
		return
	}
	slots := c.current().dosSlots
	var why []string
	for _, b := range blocked {
		if b.Addr != src.Addr() {
			continue
		}
		for id, slot := range slots {
			if slot == b.Slot {
				tr.DoSBlocked = append(tr.DoSBlocked, id)
				why = append(why, fmt.Sprintf("policy %d blocks it for %.0fs more", id, b.Remaining.Seconds()))
			}
		}
	}
	if len(why) > 0 {
		slices.Sort(tr.DoSBlocked)
		slices.Sort(why)
		tr.DoS = strings.Join(why, "; ")
	}
}

// traceXDP runs the program on the flow's next client packet: an ACK of a
// tracked TCP flow, a SYN of a new one, a UDP datagram.
func (c *core) traceXDP(tr *api.Trace, x dataplane.Explanation, proto ipproto.Proto, src, dst netip.AddrPort) error {
	f := frame.Frame{DstMAC: c.env.upMAC, Src: src.Addr(), Dst: dst.Addr(), Proto: proto, SrcPort: src.Port(),
		DstPort: dst.Port(), TCPFlags: frame.FlagSYN, Payload: []byte("scmlb-xsk trace")}
	if x.Tracked {
		f.SrcMAC, f.TCPFlags = x.Flow.ClientMAC, frame.FlagACK
	}
	if proto != ipproto.TCP {
		f.TCPFlags = 0
	}
	ret, err := c.kern.TestRun(f.Bytes(), c.env.upIndex)
	if err != nil {
		return err
	}
	tr.XDPAction = xdpActions[ret]
	switch ret {
	case 4:
		tr.XDP = "steered to a worker's AF_XDP socket"
	case 1:
		tr.XDP = "dropped by the XDP program (firewall or DoS)"
	case 2:
		tr.XDP = "passed to the kernel: not a service, or no socket on the queue"
	default:
		tr.XDP = "unexpected action"
	}
	return nil
}

// traceWorker reports the service, the tracked flow or Maglev's pick,
// and the rewrite.
func (c *core) traceWorker(tr *api.Trace, st *config.State, x dataplane.Explanation) {
	if x.Service == 0 {
		tr.Verdict = "not a service: the kernel handles it"
		if tr.XDPAction == "XDP_DROP" {
			tr.Verdict = "dropped in XDP"
		}
		return
	}
	svc, _ := st.Service(x.Service)
	if svc != nil {
		tr.ServiceID, tr.Service, tr.Mode = svc.ID, svc.Name(), svc.Mode.String()
	}
	if x.Tracked {
		f := flowView(x.Flow, time.Now().UnixNano())
		tr.Conntrack = &f
		tr.Pick = "tracked flow"
	} else {
		tr.Pick = "maglev (new flow)"
	}
	if x.Backend == 0 {
		tr.Verdict = "dropped by the worker: no backend takes new flows (no_backend)"
		return
	}
	tr.BackendID, tr.Backend = x.Backend, netip.AddrPortFrom(x.BackendTo.IP(), x.BackendPort).String()
	srcPort := fmt.Sprint(x.SrcPort)
	if x.Mode == fwdmode.FullNAT && !x.Tracked {
		srcPort = "(allocated)"
	}
	host := x.Src.IP().String()
	if !x.Src.Is4() {
		host = "[" + host + "]"
	}
	tr.Rewrite = &api.Rewrite{Src: host + ":" + srcPort, Dst: netip.AddrPortFrom(x.Dst.IP(), x.DstPort).String(),
		SrcMAC: net.HardwareAddr(x.SrcMAC[:]).String(), DstMAC: net.HardwareAddr(x.DstMAC[:]).String()}
	switch {
	case tr.XDPAction == "XDP_DROP":
		tr.Verdict = "dropped in XDP"
	case x.BackendMAC == (packet.MAC{}):
		tr.Verdict = "dropped by the worker: the backend's next hop is unresolved (no_neighbour)"
	default:
		tr.Verdict = fmt.Sprintf("forwarded (%s) to backend %d (%s)", x.Mode, x.Backend, tr.Backend)
	}
}
