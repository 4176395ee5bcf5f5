package daemon

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

const twoBackends = `services:
  - vip: 10.0.100.1:80
    backends:
      - address: 10.0.2.11
      - address: 10.0.2.12
`

// A plan changes nothing; apply moves to the document in one step, keeps
// ids of what stays, and reports the share of hash space that moves and
// the flows pinned to removed backends; export writes what apply took.
func TestApplyPlanExport(t *testing.T) {
	c := newTestCore(t, filepath.Join(t.TempDir(), "state.json"), Limits)
	res, err := c.Apply(api.ApplyRequest{YAML: twoBackends, DryRun: true})
	if err != nil || res.Applied || len(res.Changes) != 3 || len(c.Services()) != 0 {
		t.Fatalf("dry run %+v %v", res, err)
	}
	if res.Services[0].Status != "added" || res.Services[0].MovedShare != 1 {
		t.Fatalf("dry run services %+v", res.Services)
	}
	if res, err = c.Apply(api.ApplyRequest{YAML: twoBackends}); err != nil || !res.Applied {
		t.Fatalf("apply %+v %v", res, err)
	}
	if s := c.Services(); len(s) != 1 || len(s[0].Backends) != 2 || c.kern.services[bpf.Endpoint{Addr: netip.MustParseAddr("10.0.100.1"), Port: 80, Proto: ipproto.TCP}] != 1 {
		t.Fatalf("services %+v", s)
	}
	// Again: nothing to do.
	if res, err = c.Apply(api.ApplyRequest{YAML: twoBackends}); err != nil || res.Applied || len(res.Changes) != 0 ||
		res.Services[0].Status != "unchanged" {
		t.Fatalf("second apply %+v %v", res, err)
	}

	// Three flows on backend 10.0.2.11 (id 1).
	ct := c.eng.Conntrack()
	for port := uint16(1); port <= 3; port++ {
		fwd := packet.Tuple{Src: packet.AddrFrom(netip.MustParseAddr("10.0.1.2")), Dst: packet.AddrFrom(netip.MustParseAddr("10.0.100.1")),
			SrcPort: port, DstPort: 80, Proto: ipproto.TCP}
		rev := packet.Tuple{Src: packet.AddrFrom(netip.MustParseAddr("10.0.2.11")), Dst: fwd.Src, SrcPort: 80, DstPort: port, Proto: ipproto.TCP}
		if !ct.Insert(fwd, rev, conntrack.NewFlow{Backend: 1}, &packet.Segment{Flags: packet.FlagSYN}, 60, 1) {
			t.Fatal("insert")
		}
	}
	// Replace 10.0.2.11 by 10.0.2.13: at least 11's half of the space moves
	// (Maglev moves some more: 0.67 here), three flows are pinned to it.
	swap := strings.Replace(twoBackends, "10.0.2.11", "10.0.2.13", 1)
	res, err = c.Apply(api.ApplyRequest{YAML: swap, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	sp := res.Services[0]
	if sp.Status != "changed" || sp.MovedShare < 0.5 || sp.MovedShare > 0.75 || sp.PinnedFlows != 3 {
		t.Fatalf("plan %+v", res)
	}
	want := []string{"- backend 10.0.2.11:80 of 10.0.100.1:80/tcp", "+ backend 10.0.2.13:80 of 10.0.100.1:80/tcp weight 1"}
	if !reflect.DeepEqual(res.Changes, want) {
		t.Fatalf("changes %q", res.Changes)
	}
	// A third backend grows the Maglev table (1021 -> 2039 slots): the
	// slots reshuffle and 2/3 of the space moves, not the third a table of
	// one size would move. The plan says so; no flow is pinned.
	three := twoBackends + "      - address: 10.0.2.13\n"
	if res, _ = c.Apply(api.ApplyRequest{YAML: three, DryRun: true}); res.Services[0].MovedShare < 0.6 ||
		res.Services[0].MovedShare > 0.72 || res.Services[0].PinnedFlows != 0 {
		t.Fatalf("plan %+v", res)
	}
	// A weight change within one table size moves about what it shifts.
	heavier := strings.Replace(twoBackends, "10.0.2.12\n", "10.0.2.12\n        weight: 3\n", 1)
	if res, _ = c.Apply(api.ApplyRequest{YAML: heavier, DryRun: true}); res.Services[0].MovedShare < 0.2 ||
		res.Services[0].MovedShare > 0.45 {
		t.Fatalf("plan %+v", res)
	}
	if res, err = c.Apply(api.ApplyRequest{YAML: swap}); err != nil || !res.Applied {
		t.Fatalf("apply swap %+v %v", res, err)
	}
	if s := c.Services(); s[0].ID != 1 || s[0].Backends[0].ID != 3 || s[0].Backends[1].ID != 2 {
		t.Fatalf("ids %+v", s)
	}
	e, err := c.Export()
	if err != nil || e.YAML != "services:\n  - vip: 10.0.100.1:80\n    proto: tcp\n    mode: nat\n    backends:\n"+
		"      - address: 10.0.2.13:80\n        weight: 1\n      - address: 10.0.2.12:80\n        weight: 1\n" {
		t.Fatalf("export %q %v", e.YAML, err)
	}
	// A bad document, or one the store refuses, changes nothing.
	for doc, want := range map[string]string{
		"services: [{vip: 10.0.100.1:80, backends: [{address: 10.0.2.11, weight: 70000}]}]": "weight 70000",
		"services: [{vip: 127.0.0.1:80, backends: []}]":                                     "loopback",
		"servics: []": "field servics not found",
	} {
		if _, err := c.Apply(api.ApplyRequest{YAML: doc}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
	if e2, _ := c.Export(); e2 != e {
		t.Fatal("a refused document changed the state")
	}
}

// A change to one service does not mark another whose name is part of
// its own (1.2.3.4:80/tcp in 11.2.3.4:80/tcp) as changed.
func TestPlanNamesOnlyChangedServices(t *testing.T) {
	c := newTestCore(t, "", Limits)
	doc := "services:\n  - vip: 1.2.3.4:80\n    backends: [{address: 10.0.2.11}]\n  - vip: 11.2.3.4:80\n    backends: [{address: 10.0.2.11}]\n"
	if _, err := c.Apply(api.ApplyRequest{YAML: doc}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Apply(api.ApplyRequest{YAML: strings.Replace(doc, "  - vip: 11.2.3.4:80\n    backends: [{address: 10.0.2.11}]",
		"  - vip: 11.2.3.4:80\n    backends: [{address: 10.0.2.11, weight: 2}]", 1), DryRun: true})
	if err != nil || len(res.Services) != 2 || res.Services[0].Status != "unchanged" || res.Services[1].Status != "changed" {
		t.Fatalf("plan %+v %v", res, err)
	}
}
