package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

var (
	vip = netip.MustParseAddr("10.0.100.1")
	b1  = netip.MustParseAddr("10.0.2.11")
	b2  = netip.MustParseAddr("10.0.2.12")
)

// testLimits are small, so tests can reach them.
var testLimits = Limits{Services: 4, Backends: 6, BackendsPerService: 3, FirewallRules: 8, RulesPerPrefix: 3, DosPolicies: 2}

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// change prepares and commits, as the daemon does when the dataplane agrees.
func change(s *Store, fn func(*State) error) error {
	next, err := s.Prepare(fn)
	if err != nil {
		return err
	}
	return s.Commit(next)
}

func TestStoreLifecycleAndPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path)
	var svc ServiceState
	var be BackendState
	err := change(s, func(st *State) (err error) {
		if svc, err = st.AddService(vip, 80, ipproto.TCP, fwdmode.NAT, nil); err != nil {
			return err
		}
		be, err = st.AddBackend(svc.ID, b1, 0, 2)
		return err
	})
	if err != nil || svc.ID != 1 || be.ID != 1 || be.Port != 80 || be.Weight != 2 {
		t.Fatalf("%+v %+v %v", svc, be, err)
	}
	for _, fn := range []func(*State) error{
		func(st *State) error { _, err := st.AddBackend(svc.ID, b2, 8080, 1); return err },
		func(st *State) error { return st.DrainBackend(1) },
		func(st *State) error { return st.DeleteBackend(1) },
	} {
		if err := change(s, fn); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// A new store on the same file sees the same state, and ids continue.
	again := open(t, path)
	if !again.Existed() || !reflect.DeepEqual(again.State(), s.State()) {
		t.Fatalf("reloaded %+v\nwant %+v", again.State(), s.State())
	}
	change(again, func(st *State) (err error) { be, err = st.AddBackend(svc.ID, b1, 80, 1); return err })
	if be.ID != 3 {
		t.Fatalf("backend id reused: %d", be.ID)
	}
}

// TestBadInputLeavesStateUnchanged: every rejected change names the problem
// and neither the state nor the file changes.
func TestBadInputLeavesStateUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path)
	change(s, func(st *State) error {
		st.AddService(vip, 80, ipproto.TCP, fwdmode.NAT, nil)
		_, err := st.AddBackend(1, b1, 80, 1)
		return err
	})
	before := s.State()
	file, _ := os.ReadFile(path)
	addSvc := func(a string, port uint16, p ipproto.Proto) func(*State) error {
		return func(st *State) error {
			_, err := st.AddService(netip.MustParseAddr(a), port, p, fwdmode.NAT, nil)
			return err
		}
	}
	addBe := func(svc uint32, a string, w uint32) func(*State) error {
		return func(st *State) error { _, err := st.AddBackend(svc, netip.MustParseAddr(a), 80, w); return err }
	}
	for _, c := range []struct {
		name string
		do   func(*State) error
		is   error
		want string
	}{
		{"duplicate service", addSvc("10.0.100.1", 80, ipproto.TCP), ErrExists, "10.0.100.1:80/tcp is service 1"},
		{"icmp service", addSvc("10.0.100.1", 81, ipproto.ICMP), ErrInvalid, "want tcp or udp"},
		{"port 0", addSvc("10.0.100.1", 0, ipproto.UDP), ErrInvalid, "port 0"},
		{"ipv6 loopback vip", addSvc("::1", 80, ipproto.TCP), ErrInvalid, "loopback"},
		{"ipv6 backend of an ipv4 service", addBe(1, "2001:db8:2::11", 1), ErrInvalid, "backend 2001:db8:2::11 is IPv6 but service 10.0.100.1:80/tcp is IPv4"},
		{"vip 0.0.0.0", addSvc("0.0.0.0", 80, ipproto.TCP), ErrInvalid, "unspecified"},
		{"vip multicast", addSvc("224.0.0.1", 80, ipproto.TCP), ErrInvalid, "multicast"},
		{"vip loopback", addSvc("127.0.0.1", 80, ipproto.TCP), ErrInvalid, "loopback"},
		{"vip broadcast", addSvc("255.255.255.255", 80, ipproto.TCP), ErrInvalid, "broadcast"},
		{"vip link-local", addSvc("169.254.1.1", 80, ipproto.TCP), ErrInvalid, "link-local"},
		{"vip class e", addSvc("240.0.0.9", 80, ipproto.TCP), ErrInvalid, "reserved"},
		{"unknown service", addBe(9, "10.0.2.12", 1), ErrNotFound, "service 9"},
		{"duplicate backend", addBe(1, "10.0.2.11", 1), ErrExists, "backend 10.0.2.11:80 is backend 1"},
		{"weight 0", addBe(1, "10.0.2.12", 0), ErrInvalid, "weight"},
		{"weight too big", addBe(1, "10.0.2.12", MaxWeight+1), ErrInvalid, "weight"},
		{"backend broadcast", addBe(1, "255.255.255.255", 1), ErrInvalid, "broadcast"},
		{"backend multicast", addBe(1, "224.0.0.1", 1), ErrInvalid, "multicast"},
		{"backend loopback", addBe(1, "127.0.0.1", 1), ErrInvalid, "loopback"},
		{"backend 0.0.0.0", addBe(1, "0.0.0.0", 1), ErrInvalid, "unspecified"},
		{"unknown backend drain", func(st *State) error { return st.DrainBackend(42) }, ErrNotFound, "backend 42"},
		{"delete not drained", func(st *State) error { return st.DeleteBackend(1) }, ErrConflict, "not drained"},
		{"delete service with live backend", func(st *State) error { return st.DeleteService(1, false) }, ErrConflict, "drain its backends"},
		{"unknown service delete", func(st *State) error { return st.DeleteService(7, false) }, ErrNotFound, "service 7"},
	} {
		err := change(s, c.do)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %v with %q", c.name, err, c.is, c.want)
		}
		if s.State() != before {
			t.Fatalf("%s changed the state", c.name)
		}
		if now, _ := os.ReadFile(path); string(now) != string(file) {
			t.Fatalf("%s changed the state file", c.name)
		}
	}
	if err := change(s, func(st *State) error { return st.DeleteService(1, true) }); err != nil {
		t.Fatalf("forced delete: %v", err)
	}
}

// Prepare saves nothing: a change the caller then refuses (the dataplane
// would not take it) leaves the state and the file as they were.
func TestPrepareSavesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path)
	next, err := s.Prepare(func(st *State) error { _, err := st.AddService(vip, 80, ipproto.TCP, fwdmode.NAT, nil); return err })
	if err != nil || len(next.Services) != 1 {
		t.Fatal(err)
	}
	if len(s.State().Services) != 0 {
		t.Fatal("Prepare changed the current state")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("Prepare wrote the file")
	}
}

// Bug 1 of issue 9: the protocol is one typed value; "TCP" in a request or
// in a file is tcp, so it cannot make a second service.
func TestProtocolIsCanonical(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path)
	change(s, func(st *State) error { _, err := st.AddService(vip, 80, ipproto.TCP, fwdmode.NAT, nil); return err })
	p, err := ipproto.ParseL4("TCP")
	if err != nil {
		t.Fatal(err)
	}
	err = change(s, func(st *State) error { _, err := st.AddService(vip, 80, p, fwdmode.NAT, nil); return err })
	if !errors.Is(err, ErrExists) {
		t.Fatalf("TCP next to tcp: %v", err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"proto": "tcp"`) {
		t.Fatalf("protocol not stored canonically:\n%s", b)
	}
	// A file an old build wrote with both spellings is refused at start,
	// naming the file, never half-loaded.
	s.Close()
	os.WriteFile(path, []byte(`{"version":1,"next_service_id":3,"next_backend_id":1,"services":[
		{"id":1,"vip":"10.0.100.1","port":80,"proto":"tcp"},{"id":2,"vip":"10.0.100.1","port":80,"proto":"TCP"}]}`), 0o600)
	if _, err := Open(path, testLimits); err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, ErrExists) {
		t.Fatalf("file with tcp and TCP: %v", err)
	}
}

// Bug 2 of issue 9: every limit is enforced with ErrConflict naming it.
func TestLimitsEnforced(t *testing.T) {
	s := open(t, "")
	for i := 0; i < testLimits.Services; i++ {
		if err := change(s, func(st *State) error {
			_, err := st.AddService(vip, uint16(100+i), ipproto.TCP, fwdmode.NAT, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	err := change(s, func(st *State) error { _, err := st.AddService(vip, 99, ipproto.TCP, fwdmode.NAT, nil); return err })
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "MAX_SERVICES") {
		t.Fatalf("service beyond the limit: %v", err)
	}
	add := func(svc uint32, host byte) error {
		return change(s, func(st *State) error {
			_, err := st.AddBackend(svc, netip.AddrFrom4([4]byte{10, 0, 2, host}), 0, 1)
			return err
		})
	}
	for h := byte(1); h <= 3; h++ {
		if err := add(1, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := add(1, 4); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "MAX_BACKENDS_PER_SERVICE") {
		t.Fatalf("backend beyond the per-service limit: %v", err)
	}
	for h := byte(1); h <= 3; h++ {
		if err := add(2, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := add(3, 9); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "MAX_BACKENDS") {
		t.Fatalf("backend beyond the total limit: %v", err)
	}
	for i := 0; i < testLimits.DosPolicies; i++ {
		if err := change(s, func(st *State) error {
			_, err := st.AddDosPolicy(DosPolicy{Proto: []ipproto.Proto{ipproto.UDP, ipproto.ICMP}[i], Type: "any", LimitPPS: 1, BlockSeconds: 1})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	err = change(s, func(st *State) error {
		_, err := st.AddDosPolicy(DosPolicy{Proto: ipproto.TCP, Type: "syn", LimitPPS: 1, BlockSeconds: 1})
		return err
	})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "MAX_DOS_POLICIES") {
		t.Fatalf("policy beyond the limit: %v", err)
	}
}

func TestUnwritableFileKeepsState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, filepath.Join(dir, "state.json"))
	// The state file's path turns into a directory: nothing can replace it.
	if err := os.Mkdir(filepath.Join(dir, "state.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := change(s, func(st *State) error { _, err := st.AddService(vip, 80, ipproto.TCP, fwdmode.NAT, nil); return err }); err == nil {
		t.Fatal("write over a directory succeeded")
	}
	if len(s.State().Services) != 0 {
		t.Fatal("failed write still changed the state")
	}
}

func TestCorruptFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := Open(path, testLimits); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt file: %v", err)
	}
	os.WriteFile(path, []byte(`{"version":1,"next_service_id":1,"next_backend_id":1,"services":[{"id":5,"vip":"10.0.0.1","port":80,"proto":"tcp"}]}`), 0o600)
	if _, err := Open(path, testLimits); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("inconsistent file: %v", err)
	}
}

// Bug 6 of issue 9: the state file is locked; a second store (daemon) on it
// is refused, naming the holder's pid.
func TestStateFileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path)
	_, err := Open(path, testLimits)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second open: %v", err)
	}
	s.Close()
	again, err := Open(path, testLimits)
	if err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	again.Close()
}

// Bug 5 of issue 9: flags seed a new state only; with an existing state
// file they are reported, not applied.
func TestSeed(t *testing.T) {
	svc, _ := ParseService("tcp/10.0.100.1:3307=10.0.2.11:3306,10.0.2.12:3306@2")
	flags, _ := Resolve([]Service{svc})
	st := NewState()
	for i := 0; i < 2; i++ { // idempotent
		ignored, err := Seed(st, flags, nil, false)
		if err != nil || len(ignored) != 0 {
			t.Fatal(ignored, err)
		}
	}
	if len(st.Services) != 1 || len(st.Services[0].Backends) != 2 || st.Services[0].Backends[1].Weight != 2 {
		t.Fatalf("%+v", st)
	}
	// The operator deletes backend 1 and reweights backend 2 through the API.
	st.DrainBackend(1)
	st.DeleteBackend(1)
	st.Services[0].Backends[0].Weight = 5
	before := st.Clone()
	extra, _ := ParseService("udp/10.0.100.1:53=10.0.2.11")
	flags2, _ := Resolve([]Service{svc, extra})
	ignored, err := Seed(st, flags2, nil, true)
	if err != nil || !reflect.DeepEqual(st, before) {
		t.Fatalf("seeding an existing state changed it: %v", err)
	}
	want := []string{
		"backend 10.0.2.11:3306 of service 10.0.100.1:3307/tcp is not in the state file",
		"backend 10.0.2.12:3306 of service 10.0.100.1:3307/tcp has weight 5 in the state file, not 2",
		"service 10.0.100.1:53/udp is not in the state file",
	}
	if !reflect.DeepEqual(ignored, want) {
		t.Fatalf("ignored %q\nwant %q", ignored, want)
	}
}

func TestServiceHealth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path)
	bad := &HealthCheck{Type: "http", Path: "/", Status: 200, IntervalMs: 100, TimeoutMs: 500, Rise: 1, Fall: 1}
	err := change(s, func(st *State) error { _, err := st.AddService(vip, 80, ipproto.TCP, fwdmode.NAT, bad); return err })
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("timeout > interval accepted: %v", err)
	}
	good := &HealthCheck{Type: "tcp", IntervalMs: 1000, TimeoutMs: 500, Rise: 2, Fall: 3}
	if err := change(s, func(st *State) error { _, err := st.AddService(vip, 80, ipproto.TCP, fwdmode.NAT, good); return err }); err != nil {
		t.Fatal(err)
	}
	if err := change(s, func(st *State) error { return st.SetServiceHealth(1, bad) }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad health set: %v", err)
	}
	s.Close()
	again := open(t, path)
	if h := again.State().Services[0].Health; h == nil || *h != *good {
		t.Fatalf("health not persisted: %+v", h)
	}
	if err := change(again, func(st *State) error { return st.SetServiceHealth(1, nil) }); err != nil || again.State().Services[0].Health != nil {
		t.Fatalf("remove health: %v", err)
	}
	if err := change(again, func(st *State) error { return st.SetServiceHealth(99, good) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown service: %v", err)
	}
}

func TestBGPSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path)
	peer, err := ParseBGPPeer("10.0.5.1:65000", 65001)
	if err != nil || peer.ASN != 65000 {
		t.Fatal(peer, err)
	}
	ibgp, _ := ParseBGPPeer("10.0.5.2", 65001)
	b := &BGP{ASN: 65001, RouterID: netip.MustParseAddr("10.0.5.11"), Peers: []BGPPeer{peer, ibgp}, HoldSeconds: 3}
	for _, c := range []struct {
		b    BGP
		want string
	}{
		{BGP{ASN: 0, RouterID: b.RouterID, Peers: b.Peers, HoldSeconds: 3}, "local ASN 0"},
		{BGP{ASN: 23456, RouterID: b.RouterID, Peers: b.Peers, HoldSeconds: 3}, "23456"},
		{BGP{ASN: 1, Peers: b.Peers, HoldSeconds: 3}, "router id"},
		{BGP{ASN: 1, RouterID: b.RouterID, HoldSeconds: 3}, "at least one peer"},
		{BGP{ASN: 1, RouterID: b.RouterID, Peers: []BGPPeer{peer, peer}, HoldSeconds: 3}, "given twice"},
		{BGP{ASN: 1, RouterID: b.RouterID, Peers: b.Peers, HoldSeconds: 2}, "hold time"},
		{BGP{ASN: 1, RouterID: b.RouterID, Peers: []BGPPeer{{Addr: netip.MustParseAddr("224.0.0.5"), ASN: 1}}, HoldSeconds: 3}, "multicast"},
	} {
		if err := change(s, func(st *State) error { return st.SetBGP(&c.b) }); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.b, err, c.want)
		}
	}
	if _, err := ParseBGPPeer("10.0.5.1:x", 1); err == nil {
		t.Error("bad ASN accepted")
	}
	if err := change(s, func(st *State) error { return st.SetBGP(b) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	again := open(t, path)
	if !again.State().BGP.Equal(b) {
		t.Fatalf("not persisted: %+v", again.State().BGP)
	}
	// Flags seed a new state only; a differing existing one is reported.
	st := NewState()
	if _, err := Seed(st, nil, b, false); err != nil || !st.BGP.Equal(b) {
		t.Fatalf("seed: %v %+v", err, st.BGP)
	}
	other := *b
	other.HoldSeconds = 30
	ignored, _ := Seed(st, nil, &other, true)
	if len(ignored) != 1 || st.BGP.HoldSeconds != 3 {
		t.Fatalf("existing state: %v %+v", ignored, st.BGP)
	}
}

// An IPv6 service with IPv6 backends is kept across a reopen exactly; a
// service mixing families, or IPv6 dsr-ipip, is refused.
func TestIPv6ServicePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path)
	vip := netip.MustParseAddr("2001:db8:100::1")
	var svc ServiceState
	err := change(s, func(st *State) error {
		var err error
		if svc, err = st.AddService(vip, 443, ipproto.TCP, fwdmode.FullNAT, nil); err != nil {
			return err
		}
		if _, err := st.AddBackend(svc.ID, netip.MustParseAddr("2001:db8:2::11"), 8443, 2); err != nil {
			return err
		}
		_, err = st.AddBackend(svc.ID, netip.MustParseAddr("10.0.2.11"), 8443, 1)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "backend 10.0.2.11 is IPv4 but service [2001:db8:100::1]:443/tcp is IPv6") {
		t.Fatalf("mixed families: %v", err)
	}
	if err := change(s, func(st *State) error {
		svc, _ = st.AddService(vip, 443, ipproto.TCP, fwdmode.FullNAT, nil)
		_, err := st.AddBackend(svc.ID, netip.MustParseAddr("2001:db8:2::11"), 8443, 2)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := change(s, func(st *State) error {
		_, err := st.AddService(vip, 80, ipproto.TCP, fwdmode.DSRIPIP, nil)
		return err
	}); err == nil || !strings.Contains(err.Error(), "IPv4 only") {
		t.Fatalf("IPv6 dsr-ipip: %v", err)
	}
	before := s.State()
	s.Close()
	again := open(t, path)
	got := again.State().Services
	if len(got) != 1 || got[0].VIP != vip || got[0].Backends[0].Addr != netip.MustParseAddr("2001:db8:2::11") ||
		got[0].Backends[0].Port != 8443 || !reflect.DeepEqual(before.Services, got) {
		t.Fatalf("reopened: %+v", got)
	}
}
