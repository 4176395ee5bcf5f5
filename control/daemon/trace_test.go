package daemon

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

func TestTrace(t *testing.T) {
	c := newTestCore(t, "", Limits)
	if _, err := c.Apply(api.ApplyRequest{YAML: twoBackends + `firewall:
  - network: 198.51.100.0/24
    proto: tcp
    dst_ports: "22"
  - network: 203.0.113.0/24
dos:
  - proto: tcp
    type: syn
    limit_pps: 10
    block: 60s
`}); err != nil {
		t.Fatal(err)
	}
	c.kern.action = 4
	req := api.TraceRequest{Proto: "TCP", Src: "198.51.100.7:40000", Dst: "10.0.100.1:80"}
	tr, err := c.Trace(req)
	if err != nil {
		t.Fatal(err)
	}
	if tr.FirewallRule != 0 || tr.Firewall != "no rule matches" || len(tr.DoSBlocked) != 0 || tr.XDPAction != "XDP_REDIRECT" ||
		tr.ServiceID != 1 || tr.Mode != "nat" || tr.Conntrack != nil || tr.Pick != "maglev (new flow)" || tr.BackendID == 0 ||
		tr.Rewrite == nil || tr.Rewrite.Src != "198.51.100.7:40000" || tr.Rewrite.Dst != tr.Backend ||
		!strings.HasPrefix(tr.Verdict, "forwarded (nat) to backend") {
		t.Fatalf("new flow %+v %+v", tr, tr.Rewrite)
	}
	var p packet.Packet
	if packet.Decode(c.kern.testRuns[0], &p) != packet.OK || p.Seg.Flags != packet.FlagSYN ||
		p.Tuple() != (packet.Tuple{Src: packet.AddrFrom(netip.MustParseAddr("198.51.100.7")), Dst: packet.AddrFrom(netip.MustParseAddr("10.0.100.1")),
			SrcPort: 40000, DstPort: 80, Proto: ipproto.TCP}) {
		t.Fatalf("test-run frame %x", c.kern.testRuns[0])
	}

	// The flow is tracked now: its backend, whatever Maglev says.
	picked := tr.BackendID
	other := uint32(1)
	if picked == 1 {
		other = 2
	}
	fwd := p.Tuple()
	rev := packet.Tuple{Src: packet.AddrFrom(netip.MustParseAddr(map[uint32]string{1: "10.0.2.11", 2: "10.0.2.12"}[other])), Dst: fwd.Src,
		SrcPort: 80, DstPort: 40000, Proto: ipproto.TCP}
	c.eng.Conntrack().Insert(fwd, rev, conntrack.NewFlow{Backend: other, ClientMAC: packet.MAC{2, 9}}, &packet.Segment{Flags: packet.FlagSYN}, 60,
		time.Now().UnixNano())
	if tr, _ = c.Trace(req); tr.Conntrack == nil || tr.Conntrack.State != "syn_sent" || tr.BackendID != other || tr.Pick != "tracked flow" {
		t.Fatalf("tracked flow %+v", tr)
	}
	if packet.Decode(c.kern.testRuns[1], &p); p.Seg.Flags != packet.FlagACK || packet.MAC(c.kern.testRuns[1][6:12]) != (packet.MAC{2, 9}) {
		t.Fatal("a tracked flow's next packet is an ACK from its client's MAC")
	}

	// A denied source, a blocked source, no service, bad input.
	c.kern.action = 1
	c.kern.dosBlock = []bpf.Blocked{{Addr: netip.MustParseAddr("203.0.113.5"), Slot: c.current().dosSlots[1], Remaining: 30 * time.Second}}
	tr, _ = c.Trace(api.TraceRequest{Proto: "tcp", Src: "203.0.113.5:1", Dst: "10.0.100.1:80"})
	if tr.FirewallRule != 2 || len(tr.DoSBlocked) != 1 || tr.DoSBlocked[0] != 1 || !strings.Contains(tr.DoS, "policy 1 blocks it for 30s") ||
		tr.Verdict != "dropped in XDP" {
		t.Fatalf("denied %+v", tr)
	}
	if tr, _ = c.Trace(api.TraceRequest{Proto: "udp", Src: "198.51.100.7:1", Dst: "10.0.100.1:80"}); tr.ServiceID != 0 {
		t.Fatalf("udp to a tcp service %+v", tr)
	}
	for _, bad := range []api.TraceRequest{{Proto: "icmp", Src: "1.2.3.4:1", Dst: "10.0.100.1:80"},
		{Proto: "tcp", Src: "1.2.3.4", Dst: "10.0.100.1:80"}, {Proto: "tcp", Src: "[2001:db8::1]:1", Dst: "10.0.100.1:80"}} {
		if _, err := c.Trace(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
