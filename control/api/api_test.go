package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/config"
)

type fake struct {
	svcs    []Service
	drained []uint32
	bgp     *BGPSettings
}

func (f *fake) BGP() (BGP, error) { return BGP{Settings: f.bgp}, nil }
func (f *fake) SetBGP(s *BGPSettings) error {
	if s != nil && s.ASN == 0 {
		return fmt.Errorf("%w: local ASN 0", config.ErrInvalid)
	}
	f.bgp = s
	return nil
}

func (f *fake) Services() []Service { return f.svcs }
func (f *fake) Apply(r ApplyRequest) (ApplyResult, error) {
	if r.YAML == "" {
		return ApplyResult{}, fmt.Errorf("%w: empty document", config.ErrInvalid)
	}
	return ApplyResult{Changes: []string{"+ service x"}, Applied: !r.DryRun}, nil
}
func (f *fake) Trace(r TraceRequest) (Trace, error) {
	return Trace{Flow: r.Proto + " " + r.Src + " -> " + r.Dst, Verdict: "forwarded"}, nil
}
func (f *fake) Export() (Export, error) { return Export{YAML: "services: []\n"}, nil }
func (f *fake) AddService(r AddServiceRequest) (Service, error) {
	if r.Proto != "tcp" {
		return Service{}, fmt.Errorf("%w: protocol %q", config.ErrInvalid, r.Proto)
	}
	s := Service{ID: 1, VIP: r.VIP, Proto: r.Proto}
	f.svcs = append(f.svcs, s)
	return s, nil
}
func (f *fake) DeleteService(id uint32, force bool) error {
	if !force {
		return fmt.Errorf("%w: not drained", config.ErrConflict)
	}
	return nil
}
func (f *fake) AddBackend(r AddBackendRequest) (Backend, error) {
	return Backend{}, fmt.Errorf("%w: service %d", config.ErrNotFound, r.ServiceID)
}
func (f *fake) SetServiceHealth(id uint32, h *HealthCheck) error {
	if h != nil && h.Type == "icmp" {
		return fmt.Errorf("%w: check type", config.ErrInvalid)
	}
	return nil
}
func (f *fake) DrainBackend(id uint32) error { f.drained = append(f.drained, id); return nil }
func (f *fake) DeleteBackend(id uint32) error {
	return fmt.Errorf("%w: backend %d is not drained", config.ErrConflict, id)
}
func (f *fake) Conntrack() []Flow     { return []Flow{{Proto: "tcp", Client: "10.0.1.2:1"}} }
func (f *fake) Stats() (Stats, error) { return Stats{Drops: map[string]uint64{"no_flow": 3}}, nil }

func serve(t *testing.T, c Controller) (*Client, string) {
	path := filepath.Join(t.TempDir(), "run", "api.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, l, NewHandler(c, zap.NewNop())) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return NewClient(path), path
}

func TestClientServer(t *testing.T) {
	f := &fake{}
	c, path := serve(t, f)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	s, err := c.AddService(AddServiceRequest{VIP: "10.0.100.1:80", Proto: "tcp"})
	if err != nil || s.ID != 1 {
		t.Fatalf("AddService %+v %v", s, err)
	}
	if svcs, err := c.Services(); err != nil || len(svcs) != 1 || svcs[0].VIP != "10.0.100.1:80" {
		t.Fatalf("Services %+v %v", svcs, err)
	}
	if err := c.DrainBackend(7); err != nil || len(f.drained) != 1 || f.drained[0] != 7 {
		t.Fatalf("drain: %v %v", err, f.drained)
	}
	if fl, err := c.Conntrack(); err != nil || len(fl) != 1 {
		t.Fatalf("conntrack %v %v", fl, err)
	}
	if st, err := c.Stats(); err != nil || st.Drops["no_flow"] != 3 {
		t.Fatalf("stats %+v %v", st, err)
	}
	// Errors reach the client with the daemon's words.
	for _, e := range []struct {
		err  error
		want string
	}{
		{func() error { _, err := c.AddService(AddServiceRequest{VIP: "x", Proto: "sctp"}); return err }(), `protocol "sctp"`},
		{c.DeleteService(1, false), "not drained"},
		{func() error { _, err := c.AddBackend(9, "10.0.2.1", 1); return err }(), "service 9"},
		{c.DeleteBackend(3), "backend 3 is not drained"},
	} {
		if e.err == nil || !strings.Contains(e.err.Error(), e.want) {
			t.Errorf("error %v, want %q", e.err, e.want)
		}
	}
	if err := c.DeleteService(1, true); err != nil {
		t.Fatal(err)
	}
	if err := c.SetServiceHealth(1, &HealthCheck{Type: "tcp"}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetServiceHealth(1, &HealthCheck{Type: "icmp"}); err == nil || !strings.Contains(err.Error(), "check type") {
		t.Fatalf("bad health: %v", err)
	}
	set := BGPSettings{ASN: 65001, RouterID: "10.0.5.11", Peers: []string{"10.0.5.1:65000"}}
	if err := c.SetBGP(set); err != nil {
		t.Fatal(err)
	}
	if b, err := c.BGP(); err != nil || b.Settings == nil || b.Settings.Peers[0] != "10.0.5.1:65000" {
		t.Fatalf("bgp %+v %v", b, err)
	}
	var se *StatusError
	if err := c.SetBGP(BGPSettings{}); !errors.As(err, &se) || se.Code != 400 {
		t.Fatalf("bad bgp settings: %v", err)
	}
	if err := c.DeleteBGP(); err != nil || f.bgp != nil {
		t.Fatalf("bgp off: %v %+v", err, f.bgp)
	}
}

func TestStatusCodes(t *testing.T) {
	for err, want := range map[error]int{
		fmt.Errorf("x: %w", config.ErrNotFound): 404, config.ErrExists: 409, config.ErrConflict: 409,
		config.ErrInvalid: 400, fmt.Errorf("disk full"): 500,
	} {
		if got := statusOf(err); got != want {
			t.Errorf("%v -> %d, want %d", err, got, want)
		}
	}
}

func TestSocketTakeover(t *testing.T) {
	_, path := serve(t, &fake{})
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Fatalf("second listener on a live socket: %v", err)
	}
	stale := filepath.Join(t.TempDir(), "stale.sock")
	l, _ := net.Listen("unix", stale)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // leaves the file, as a killed daemon would
	l2, err := Listen(stale)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
}

func TestUnreachableDaemon(t *testing.T) {
	_, err := NewClient(filepath.Join(t.TempDir(), "none.sock")).Services()
	if err == nil || !strings.Contains(err.Error(), "daemon not reachable") {
		t.Fatalf("%v", err)
	}
}

func (f *fake) FirewallRules() ([]FirewallRule, error) {
	return []FirewallRule{{ID: 1, Network: "10.0.0.0/8", Proto: "tcp", SrcPorts: "any", DstPorts: "22"}}, nil
}
func (f *fake) AddFirewallRule(r AddFirewallRuleRequest) (FirewallRule, error) {
	if r.Network == "bad" {
		return FirewallRule{}, fmt.Errorf("%w: network bad", config.ErrInvalid)
	}
	return FirewallRule{ID: 2, Network: r.Network, Proto: r.Proto}, nil
}
func (f *fake) DeleteFirewallRule(id uint32) error {
	return fmt.Errorf("%w: firewall rule %d", config.ErrNotFound, id)
}
func (f *fake) DosPolicies() ([]DosPolicy, error) {
	return []DosPolicy{{ID: 1, Proto: "tcp", Type: "syn", Status: "triggered", Blocked: []BlockedSource{{Address: "10.0.1.2"}}}}, nil
}
func (f *fake) AddDosPolicy(r AddDosPolicyRequest) (DosPolicy, error) {
	return DosPolicy{ID: 2, Proto: r.Proto, Type: r.Type, LimitPPS: r.LimitPPS}, nil
}
func (f *fake) DeleteDosPolicy(id uint32) error { return nil }

func TestFilterEndpoints(t *testing.T) {
	c, _ := serve(t, &fake{})
	if rules, err := c.FirewallRules(); err != nil || len(rules) != 1 || rules[0].DstPorts != "22" {
		t.Fatalf("%+v %v", rules, err)
	}
	if r, err := c.AddFirewallRule(AddFirewallRuleRequest{Network: "10.1.0.0/16", Proto: "udp"}); err != nil || r.ID != 2 {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := c.AddFirewallRule(AddFirewallRuleRequest{Network: "bad"}); err == nil || !strings.Contains(err.Error(), "network bad") {
		t.Fatalf("%v", err)
	}
	if err := c.DeleteFirewallRule(5); err == nil || !strings.Contains(err.Error(), "firewall rule 5") {
		t.Fatalf("%v", err)
	}
	if ps, err := c.DosPolicies(); err != nil || ps[0].Blocked[0].Address != "10.0.1.2" {
		t.Fatalf("%+v %v", ps, err)
	}
	if p, err := c.AddDosPolicy(AddDosPolicyRequest{Proto: "tcp", Type: "syn", LimitPPS: 9}); err != nil || p.LimitPPS != 9 {
		t.Fatalf("%+v %v", p, err)
	}
	if err := c.DeleteDosPolicy(2); err != nil {
		t.Fatal(err)
	}
}

type fakeSession struct{ left []DumpPacket }

func (s *fakeSession) Next(ctx context.Context) (DumpPacket, error) {
	if len(s.left) == 0 {
		return DumpPacket{}, io.EOF
	}
	p := s.left[0]
	s.left = s.left[1:]
	return p, nil
}
func (s *fakeSession) Close() error { return nil }

var dumpFixture = []DumpPacket{
	{Time: time.UnixMicro(1700000000123456), Interface: "up0", Stage: "xdp", Verdict: "steer_service", OrigLen: 74, Data: []byte("abcde")},
	{Time: time.UnixMicro(1700000000123999), Interface: "down0", Stage: "worker", Verdict: "drop:no_flow", OrigLen: 60, Data: []byte("0123456789")},
	{Time: time.UnixMicro(1700000000124000), Interface: "up0", Stage: "worker", Verdict: "reply", OrigLen: 4, Data: []byte("wxyz")},
}

func (f *fake) StartDump(r DumpRequest) (DumpSession, error) {
	if r.Port == 1 {
		return nil, fmt.Errorf("%w: a dump is already running", config.ErrConflict)
	}
	return &fakeSession{left: append([]DumpPacket(nil), dumpFixture...)}, nil
}

func TestDumpStream(t *testing.T) {
	c, _ := serve(t, &fake{})
	var buf bytes.Buffer
	if err := c.Dump(DumpRequest{At: "both", Count: 3, Duration: time.Second, Snaplen: 128}, &buf); err != nil {
		t.Fatal(err)
	}
	var got []DumpPacket
	if err := ReadPcapng(&buf, func(p DumpPacket) error { got = append(got, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(dumpFixture) {
		t.Fatalf("read %d packets", len(got))
	}
	for i := range got {
		w := dumpFixture[i]
		if !got[i].Time.Equal(w.Time) || got[i].Interface != w.Interface || got[i].Stage != w.Stage ||
			got[i].Verdict != w.Verdict || got[i].OrigLen != w.OrigLen || string(got[i].Data) != string(w.Data) {
			t.Errorf("packet %d: %+v, want %+v", i, got[i], w)
		}
	}
	if err := c.Dump(DumpRequest{At: "both", Port: 1, Count: 1, Duration: time.Second, Snaplen: 128}, &buf); err == nil ||
		!strings.Contains(err.Error(), "already running") {
		t.Fatalf("busy: %v", err)
	}
	if err := c.Dump(DumpRequest{At: "nic", Count: 1, Duration: time.Second, Snaplen: 128}, &buf); err == nil ||
		!strings.Contains(err.Error(), "want xdp, worker or both") {
		t.Fatalf("bad at: %v", err)
	}
}

func TestSummary(t *testing.T) {
	syn := []byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 8, 0,
		0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 1, 2, 10, 0, 100, 1,
		0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12, 0, 0, 0, 0, 0, 0}
	if got := Summary(syn); got != "10.0.1.2:40000 > 10.0.100.1:80 tcp [SA]" {
		t.Fatalf("%q", got)
	}
	if got := Summary([]byte{1, 2}); got != "truncated" {
		t.Fatalf("%q", got)
	}
	syn6 := fixture.Frame{Src: fixture.Client6, Dst: fixture.VIP6, Proto: fixture.ProtoUDP, SrcPort: 40000, DstPort: 53}.Bytes()
	if got := Summary(syn6); got != "[2001:db8:1::2]:40000 > [2001:db8:100::1]:53 udp" {
		t.Fatalf("%q", got)
	}
	echo6 := fixture.Frame{Src: fixture.Client6, Dst: fixture.VIP6, Proto: fixture.ProtoICMPv6}.Bytes()
	if got := Summary(echo6); got != "2001:db8:1::2 > 2001:db8:100::1 icmpv6 type 128" {
		t.Fatalf("%q", got)
	}
}

func TestApplyAndExport(t *testing.T) {
	c, _ := serve(t, &fake{})
	res, err := c.Apply("services: []", true)
	if err != nil || res.Applied || len(res.Changes) != 1 {
		t.Fatalf("dry run %+v %v", res, err)
	}
	if res, err = c.Apply("services: []", false); err != nil || !res.Applied {
		t.Fatalf("apply %+v %v", res, err)
	}
	if _, err := c.Apply("", false); err == nil || !strings.Contains(err.Error(), "empty document") {
		t.Fatalf("empty: %v", err)
	}
	// A document larger than other requests' 1 MiB bound still goes through.
	big := "# " + strings.Repeat("x", 3<<20) + "\nservices: []"
	if _, err := c.Apply(big, true); err != nil {
		t.Fatalf("3 MiB document: %v", err)
	}
	if y, err := c.Export(); err != nil || y != "services: []\n" {
		t.Fatalf("export %q %v", y, err)
	}
}
