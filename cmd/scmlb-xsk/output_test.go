package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
)

// fakeDaemon serves fixed data through the real API handler.
type fakeDaemon struct {
	applied string
	drained []uint32
	bgp     *api.BGPSettings
}

func (f *fakeDaemon) BGP() (api.BGP, error) {
	return api.BGP{Settings: &api.BGPSettings{ASN: 65001, RouterID: "10.0.5.11", Peers: []string{"10.0.5.1:65000"}, HoldSeconds: 9},
		Announcing: true, Peers: []api.BGPPeer{{Address: "10.0.5.1", ASN: 65000, State: "established", UptimeSeconds: 75}},
		Announced: []string{"10.0.100.1/32"}}, nil
}
func (f *fakeDaemon) SetBGP(s *api.BGPSettings) error { f.bgp = s; return nil }

var fixtureServices = []api.Service{{
	ID: 1, VIP: "10.0.100.1:80", Port: 80, Proto: "tcp", Mode: "nat", Packets: 30, Bytes: 3000, ActiveConns: 2,
	Health: &api.HealthCheck{Type: "http", Path: "/", Status: 200, IntervalMs: 1000, TimeoutMs: 500, Rise: 2, Fall: 3},
	Backends: []api.Backend{
		{ID: 1, ServiceID: 1, Address: "10.0.2.11:80", Weight: 1, Status: "active", Health: "healthy", MAC: "02:00:00:00:02:0b",
			NewFlows: true, Packets: 20, Bytes: 2000, Flows: 4, ActiveConns: 2},
		{ID: 2, ServiceID: 1, Address: "10.0.2.12:8080", Weight: 3, Status: "drained", Health: "unhealthy",
			HealthError: "connection refused", Packets: 10, Bytes: 1000, Flows: 1},
	},
}}

func (f *fakeDaemon) Services() []api.Service { return fixtureServices }
func (f *fakeDaemon) Apply(r api.ApplyRequest) (api.ApplyResult, error) {
	f.applied = r.YAML
	return api.ApplyResult{Changes: []string{"- backend 10.0.2.11:80 of 10.0.100.1:80/tcp"}, Applied: !r.DryRun,
		Services: []api.ServicePlan{{Service: "10.0.100.1:80/tcp", Status: "changed", MovedShare: 0.5, PinnedFlows: 3}}}, nil
}
func (f *fakeDaemon) Trace(r api.TraceRequest) (api.Trace, error) {
	return api.Trace{Flow: "tcp 198.51.100.7:40000 -> 10.0.100.1:80", Firewall: "no rule matches", DoS: "not blocked",
		XDPAction: "XDP_REDIRECT", XDP: "steered to a worker", ServiceID: 1, Service: "10.0.100.1:80/tcp", Mode: "nat",
		BackendID: 2, Backend: "10.0.2.12:80", Pick: "maglev (new flow)",
		Rewrite: &api.Rewrite{Src: "198.51.100.7:40000", Dst: "10.0.2.12:80", SrcMAC: "02:00:00:00:02:01", DstMAC: "02:00:00:00:02:0c"},
		Verdict: "forwarded to backend 2 (10.0.2.12:80)"}, nil
}
func (f *fakeDaemon) Export() (api.Export, error) { return api.Export{YAML: "services: []\n"}, nil }
func (f *fakeDaemon) AddService(r api.AddServiceRequest) (api.Service, error) {
	if r.VIP == "10.0.100.1:80" {
		return api.Service{}, fmt.Errorf("%w: service 10.0.100.1:80/tcp is service 1", config.ErrExists)
	}
	return api.Service{ID: 2, VIP: r.VIP, Proto: r.Proto, Mode: r.Mode}, nil
}
func (f *fakeDaemon) DeleteService(uint32, bool) error { return nil }
func (f *fakeDaemon) AddBackend(r api.AddBackendRequest) (api.Backend, error) {
	return api.Backend{ID: 3, ServiceID: r.ServiceID, Address: r.Address + ":80", Weight: r.Weight}, nil
}
func (f *fakeDaemon) SetServiceHealth(uint32, *api.HealthCheck) error { return nil }
func (f *fakeDaemon) DrainBackend(id uint32) error                    { f.drained = append(f.drained, id); return nil }
func (f *fakeDaemon) DeleteBackend(id uint32) error {
	return fmt.Errorf("%w: backend %d is not drained; drain it first", config.ErrConflict, id)
}
func (f *fakeDaemon) Conntrack() []api.Flow {
	return []api.Flow{{Proto: "tcp", Client: "10.0.1.2:40000", VIP: "10.0.100.1:80", Backend: "10.0.2.11:80",
		BackendID: 1, SNAT: "10.0.2.100:40001", State: "established", IdleSeconds: 1.25, Packets: 12, Bytes: 1400}}
}
func (f *fakeDaemon) Stats() (api.Stats, error) {
	return api.Stats{
		Protocols:   map[string]api.Counter{"tcp": {Packets: 40, Bytes: 4000}, "udp": {Packets: 2, Bytes: 100}},
		XDPVerdicts: map[string]api.Counter{"pass": {Packets: 5, Bytes: 300}, "steer_service": {Packets: 30, Bytes: 3000}},
		Dataplane:   api.DataplaneStats{RxPackets: 37, Forwarded: 30, Replied: 5, NewFlows: 5, RebuiltFlows: 1, Express: 28},
		Drops:       map[string]uint64{"no_flow": 2, "truncated": 0},
		Conntrack:   api.ConntrackStats{Entries: 5, Capacity: 1024, Inserts: 5, IgnoredRSTs: 2},
		Services:    fixtureServices,
		Sockets:     []api.SocketStats{{Interface: "up0", Queue: 0, Mode: "copy", SharedUMEM: true, RxPackets: 30, TxPackets: 5, Kicks: 3}},
	}, nil
}

func (f *fakeDaemon) FirewallRules() ([]api.FirewallRule, error) {
	return []api.FirewallRule{{ID: 1, Network: "0.0.0.0/0", Proto: "tcp", SrcPorts: "any", DstPorts: "8000-9000",
		DroppedPackets: 12, DroppedBytes: 720}}, nil
}
func (f *fakeDaemon) AddFirewallRule(r api.AddFirewallRuleRequest) (api.FirewallRule, error) {
	return api.FirewallRule{ID: 2, Network: r.Network, Proto: r.Proto, SrcPorts: r.SrcPorts, DstPorts: r.DstPorts}, nil
}
func (f *fakeDaemon) DeleteFirewallRule(uint32) error { return nil }
func (f *fakeDaemon) DosPolicies() ([]api.DosPolicy, error) {
	return []api.DosPolicy{
		{ID: 1, Proto: "tcp", Type: "syn", LimitPPS: 1000, BlockSeconds: 10, Status: "triggered", DroppedPackets: 900,
			Blocked: []api.BlockedSource{{Address: "10.0.1.2", RemainingSeconds: 8.4}, {Address: "10.0.1.9", RemainingSeconds: 2}}},
		{ID: 2, Proto: "udp", Type: "any", LimitPPS: 50, BlockSeconds: 60, Status: "not triggered", Blocked: []api.BlockedSource{}},
	}, nil
}
func (f *fakeDaemon) AddDosPolicy(r api.AddDosPolicyRequest) (api.DosPolicy, error) {
	return api.DosPolicy{ID: 3, Proto: r.Proto, Type: r.Type, LimitPPS: r.LimitPPS, BlockSeconds: r.BlockSeconds}, nil
}
func (f *fakeDaemon) DeleteDosPolicy(uint32) error { return nil }

func (f *fakeDaemon) StartDump(api.DumpRequest) (api.DumpSession, error) {
	return nil, fmt.Errorf("%w: not in this test", config.ErrConflict)
}

func runCLI(t *testing.T, f *fakeDaemon, args ...string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api.sock")
	l, err := api.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { api.Serve(ctx, l, api.NewHandler(f, zap.NewNop())); close(done) }()
	defer func() { cancel(); <-done }()
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	if len(args) > 0 && args[0] == "--socket-after" { // --socket after the command
		err = app.Run(append(append([]string{"scmlb-xsk"}, args[1:]...), "--socket", path))
	} else {
		err = app.Run(append([]string{"scmlb-xsk", "--socket", path}, args...))
	}
	return out.String(), err
}

func TestTables(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "get"}, `
ID  VIP            PROTO  MODE  HEALTH CHECK  BACKENDS  ACTIVE  PACKETS  BYTES
1   10.0.100.1:80  tcp    nat   http          2         2       30       3000
`},
		{[]string{"backend", "get"}, `
ID  SERVICE  ADDRESS         WEIGHT  STATUS   HEALTH     MAC                NEW FLOWS     ACTIVE  FLOWS  PACKETS  BYTES
1   1        10.0.2.11:80    1       active   healthy    02:00:00:00:02:0b  yes           2       4      20       2000
2   1        10.0.2.12:8080  3       drained  unhealthy  unresolved         no (drained)  0       1      10       1000
`},
		{[]string{"backend", "get", "--service", "2"}, `
ID  SERVICE  ADDRESS  WEIGHT  STATUS  HEALTH  MAC  NEW FLOWS  ACTIVE  FLOWS  PACKETS  BYTES
`},
		{[]string{"--socket-after", "service", "get"}, `
ID  VIP            PROTO  MODE  HEALTH CHECK  BACKENDS  ACTIVE  PACKETS  BYTES
1   10.0.100.1:80  tcp    nat   http          2         2       30       3000
`},
		{[]string{"conntrack", "get"}, `
PROTO  CLIENT          VIP            BACKEND           BACKEND SEES      STATE        IDLE  PACKETS  BYTES
tcp    10.0.1.2:40000  10.0.100.1:80  10.0.2.11:80 (1)  10.0.2.100:40001  established  1.2s  12       1400
`},
		{[]string{"stat"}, `
PROTOCOL  PACKETS  BYTES
tcp       40       4000
udp       2        100

XDP VERDICT    PACKETS  BYTES
pass           5        300
steer_service  30       3000

RX  FORWARDED  REPLIED  NEW FLOWS  REBUILT  ECHO REPLIES  ICMP TRANSLATED  FRAG NEEDED SENT  EXPRESS  SNAT PORTS
37  30         5        5          1        0             0                0                 28       0

DROP REASON  PACKETS
no_flow      2
truncated    0

CONNTRACK  CAPACITY  INSERTS  EVICTIONS  EXPIRED  COLLISIONS  IGNORED RSTS
5          1024      5        0          0        0           2

SERVICE            BACKEND         STATUS   ACTIVE  PACKETS  BYTES
10.0.100.1:80/tcp  *                        2       30       3000
10.0.100.1:80/tcp  10.0.2.11:80    active   2       20       2000
10.0.100.1:80/tcp  10.0.2.12:8080  drained  0       10       1000

SOCKET  QUEUE  MODE  SHARED UMEM  RX  TX  KICKS  TX RING FULL  NO FRAME  KICK ERRORS  RX DROPPED  FILL EMPTY  INVALID
up0     0      copy  yes          30  5   3      0             0         0            0           0           0
`},
		{[]string{"service", "add", "--vip", "10.0.100.2:53", "--proto", "udp", "--mode", "fullnat"}, "\nservice 2 added: 10.0.100.2:53/udp fullnat, health check none\n"},
		{[]string{"service", "health", "--id", "1", "--health", "http", "--health-path", "/healthz", "--health-interval", "500ms",
			"--health-timeout", "200ms"}, "\nservice 1 health check: http /healthz=200 every 500ms (rise 2, fall 3)\n"},
		{[]string{"backend", "add", "--service", "1", "--address", "10.0.2.13", "--weight", "2"},
			"\nbackend 3 added to service 1: 10.0.2.13:80 weight 2\n"},
		{[]string{"backend", "drain", "--id", "2"}, "\nbackend 2 drained\n"},
		{[]string{"fw", "get"}, `
ID  NETWORK    PROTO  SRC PORTS  DST PORTS  DROPPED  BYTES
1   0.0.0.0/0  tcp    any        8000-9000  12       720
`},
		{[]string{"fw", "add", "-n", "10.0.0.0/8", "-t", "udp", "-d", "53"},
			"\nrule 2 added: deny udp from 10.0.0.0/8 src ports any dst ports 53\n"},
		{[]string{"fw", "delete", "-i", "2"}, "\nrule 2 deleted\n"},
		{[]string{"dos", "get"}, `
ID  PROTO  TYPE  LIMIT   BLOCK  STATUS         DROPPED  BLOCKED SOURCES
1   tcp    syn   1000/s  10s    triggered      900      10.0.1.2 (8s left), 10.0.1.9 (2s left)
2   udp    any   50/s    60s    not triggered  0        -
`},
		{[]string{"bgp", "get"}, `
ASN    ROUTER ID  HOLD  LISTEN PORT  ANNOUNCING
65001  10.0.5.11  9s    -            true

PEER      ASN    STATE        UPTIME
10.0.5.1  65000  established  1m15s

ANNOUNCED
10.0.100.1/32
`},
		{[]string{"bgp", "set", "--asn", "65001", "--router-id", "10.0.5.11", "--peer", "10.0.5.1:65000", "--peer", "10.0.5.2",
			"--hold", "3s"}, "\nbgp: AS65001, router id 10.0.5.11, peers 10.0.5.1:65000 10.0.5.2, hold 3s\n"},
		{[]string{"bgp", "off"}, "\nbgp off\n"},
		{[]string{"dos", "add", "-p", "tcp", "-t", "syn", "-l", "1000", "--block", "30s"},
			"\npolicy 3 added: tcp syn over 1000 packets/s per source blocks it for 30s\n"},
	} {
		out, err := runCLI(t, &fakeDaemon{}, c.args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if want := strings.TrimPrefix(c.want, "\n"); out != want {
			t.Errorf("%v printed\n%s\nwant\n%s", c.args, out, want)
		}
	}
}

func TestJSONOutput(t *testing.T) {
	out, err := runCLI(t, &fakeDaemon{}, "backend", "get", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var bs []api.Backend
	if err := json.Unmarshal([]byte(out), &bs); err != nil || len(bs) != 2 || bs[1].Status != "drained" {
		t.Fatalf("%v %+v\n%s", err, bs, out)
	}
	out, _ = runCLI(t, &fakeDaemon{}, "stat", "--json")
	var st api.Stats
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Drops["no_flow"] != 2 || st.Conntrack.Capacity != 1024 {
		t.Fatalf("%v %+v", err, st)
	}
}

func TestCLIErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "add", "--vip", "10.0.100.1:80"}, "already exists: service 10.0.100.1:80/tcp is service 1"},
		{[]string{"backend", "delete", "--id", "1"}, "backend 1 is not drained; drain it first"},
		{[]string{"backend", "drain", "--id", "0"}, "want a positive id"},
		{[]string{"backend", "add", "--service", "1", "--address", "10.0.2.1", "--weight", "0"}, "--weight 0"},
		{[]string{"service", "delete"}, `Required flag "id" not set`},
		{[]string{"dos", "add", "-p", "tcp", "--block", "1500ms"}, "whole seconds"},
	} {
		_, err := runCLI(t, &fakeDaemon{}, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

// Bug 16 of issue 9: there is a --version.
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	if err := app.Run([]string{"scmlb-xsk", "--version"}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "scmlb-xsk version ") || !strings.Contains(out.String(), "go1.") {
		t.Fatalf("--version printed %q", out.String())
	}
}

func TestApplyCommands(t *testing.T) {
	f := &fakeDaemon{}
	doc := filepath.Join(t.TempDir(), "lb.yaml")
	os.WriteFile(doc, []byte("services:\n  - vip: 10.0.100.1:80\n    backends: [{address: 10.0.2.12}]\n"), 0o644)
	out, err := runCLI(t, f, "plan", "-f", doc)
	want := `- backend 10.0.2.11:80 of 10.0.100.1:80/tcp

SERVICE            STATUS   NEW FLOWS MOVED  FLOWS ON REMOVED BACKENDS
10.0.100.1:80/tcp  changed  50.0%            3

not applied (plan only)
`
	if err != nil || out != want {
		t.Fatalf("plan printed\n%s(%v), want\n%s", out, err, want)
	}
	if out, err = runCLI(t, f, "apply", "--file", doc); err != nil || !strings.HasSuffix(out, "\napplied\n") || !strings.Contains(f.applied, "10.0.2.12") {
		t.Fatalf("apply printed %q %v", out, err)
	}
	if out, err = runCLI(t, f, "export"); err != nil || out != "services: []\n" {
		t.Fatalf("export printed %q %v", out, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("services:\n  - vip: 10.0.100.1:80\n    backend: []\n"), 0o644)
	if _, err = runCLI(t, f, "apply", "-f", bad); err == nil || !strings.Contains(err.Error(), "field backend not found") {
		t.Fatalf("typo: %v", err)
	}
	if _, err = runCLI(t, f, "apply", "-f", filepath.Join(t.TempDir(), "missing.yaml")); err == nil ||
		!strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestTraceOutput(t *testing.T) {
	out, err := runCLI(t, &fakeDaemon{}, "trace", "--src", "198.51.100.7:40000", "--dst", "10.0.100.1:80")
	want := `flow         tcp 198.51.100.7:40000 -> 10.0.100.1:80
1 firewall   no rule matches
2 dos        not blocked
3 xdp        XDP_REDIRECT: steered to a worker
4 service    1 10.0.100.1:80/tcp (nat)
5 conntrack  no entry: a new flow
6 backend    10.0.2.12:80 (2), by maglev (new flow)
7 rewrite    198.51.100.7:40000 -> 10.0.2.12:80, MAC 02:00:00:00:02:01 -> 02:00:00:00:02:0c
verdict      forwarded to backend 2 (10.0.2.12:80)
`
	if err != nil || out != want {
		t.Fatalf("trace printed\n%s(%v), want\n%s", out, err, want)
	}
}
