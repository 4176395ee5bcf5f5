package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var (
	vip = netip.MustParseAddr("10.0.100.1")
	b1  = netip.MustParseAddr("10.0.2.11")
	b2  = netip.MustParseAddr("10.0.2.12")
)

func TestStoreLifecycleAndPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := s.AddService(vip, 80, "tcp", nil)
	if err != nil || svc.ID != 1 {
		t.Fatalf("AddService: %+v %v", svc, err)
	}
	be, err := s.AddBackend(svc.ID, b1, 0, 2)
	if err != nil || be.ID != 1 || be.Port != 80 || be.Weight != 2 {
		t.Fatalf("AddBackend: %+v %v", be, err)
	}
	if _, err := s.AddBackend(svc.ID, b2, 8080, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.DrainBackend(1); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBackend(1); err != nil {
		t.Fatal(err)
	}
	// A new store on the same file sees the same state, and ids continue.
	again, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Snapshot(), s.Snapshot()) {
		t.Fatalf("reloaded %+v\nwant %+v", again.Snapshot(), s.Snapshot())
	}
	be3, _ := again.AddBackend(svc.ID, b1, 80, 1)
	if be3.ID != 3 {
		t.Fatalf("backend id reused: %d", be3.ID)
	}
}

// TestBadInputLeavesStateUnchanged: every rejected change names the problem
// and neither the state nor the file changes.
func TestBadInputLeavesStateUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, _ := Open(path)
	s.AddService(vip, 80, "tcp", nil)
	s.AddBackend(1, b1, 80, 1)
	before := s.Snapshot()
	file, _ := os.ReadFile(path)
	for _, c := range []struct {
		name string
		do   func() error
		is   error
		want string
	}{
		{"duplicate service", func() error { _, err := s.AddService(vip, 80, "tcp", nil); return err }, ErrExists, "10.0.100.1:80/tcp is service 1"},
		{"bad proto", func() error { _, err := s.AddService(vip, 81, "sctp", nil); return err }, ErrInvalid, "want tcp or udp"},
		{"port 0", func() error { _, err := s.AddService(vip, 0, "udp", nil); return err }, ErrInvalid, "port 1-65535"},
		{"ipv6 vip", func() error { _, err := s.AddService(netip.MustParseAddr("::1"), 80, "tcp", nil); return err }, ErrInvalid, "IPv4"},
		{"unknown service", func() error { _, err := s.AddBackend(9, b2, 80, 1); return err }, ErrNotFound, "service 9"},
		{"duplicate backend", func() error { _, err := s.AddBackend(1, b1, 80, 1); return err }, ErrExists, "backend 10.0.2.11:80 is backend 1"},
		{"weight 0", func() error { _, err := s.AddBackend(1, b2, 80, 0); return err }, ErrInvalid, "weight"},
		{"unknown backend drain", func() error { return s.DrainBackend(42) }, ErrNotFound, "backend 42"},
		{"delete not drained", func() error { return s.DeleteBackend(1) }, ErrConflict, "not drained"},
		{"delete service with live backend", func() error { return s.DeleteService(1, false) }, ErrConflict, "drain its backends"},
		{"unknown service delete", func() error { return s.DeleteService(7, false) }, ErrNotFound, "service 7"},
	} {
		err := c.do()
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %v with %q", c.name, err, c.is, c.want)
		}
		if !reflect.DeepEqual(s.Snapshot(), before) {
			t.Fatalf("%s changed the state", c.name)
		}
		if now, _ := os.ReadFile(path); string(now) != string(file) {
			t.Fatalf("%s changed the state file", c.name)
		}
	}
	if err := s.DeleteService(1, true); err != nil {
		t.Fatalf("forced delete: %v", err)
	}
}

func TestUnwritableFileKeepsState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The state directory turns into a file: nothing can be written (even as root).
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddService(vip, 80, "tcp", nil); err == nil {
		t.Fatal("write into a file's path succeeded")
	}
	if len(s.Snapshot().Services) != 0 {
		t.Fatal("failed write still changed the state")
	}
}

func TestCorruptFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt file: %v", err)
	}
	os.WriteFile(path, []byte(`{"version":1,"next_service_id":1,"next_backend_id":1,"services":[{"id":5,"vip":"10.0.0.1","port":80,"proto":"tcp"}]}`), 0o600)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("inconsistent file: %v", err)
	}
}

func TestEnsureIsIdempotent(t *testing.T) {
	s, _ := Open("")
	svc, _ := ParseService("tcp/10.0.100.1:3307=10.0.2.11:3306,10.0.2.12:3306@2")
	r, _ := Resolve([]Service{svc})
	for i := 0; i < 2; i++ {
		if err := s.Ensure(r[0]); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Snapshot()
	if len(st.Services) != 1 || len(st.Services[0].Backends) != 2 || st.Services[0].Backends[1].Weight != 2 {
		t.Fatalf("%+v", st)
	}
}

func TestServiceHealth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, _ := Open(path)
	bad := &HealthCheck{Type: "http", Path: "/", Status: 200, IntervalMs: 100, TimeoutMs: 500, Rise: 1, Fall: 1}
	if _, err := s.AddService(vip, 80, "tcp", bad); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("timeout > interval accepted: %v", err)
	}
	good := &HealthCheck{Type: "tcp", IntervalMs: 1000, TimeoutMs: 500, Rise: 2, Fall: 3}
	svc, err := s.AddService(vip, 80, "tcp", good)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetServiceHealth(svc.ID, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad health set: %v", err)
	}
	again, _ := Open(path)
	if h := again.Snapshot().Services[0].Health; h == nil || *h != *good {
		t.Fatalf("health not persisted: %+v", h)
	}
	if err := s.SetServiceHealth(svc.ID, nil); err != nil || s.Snapshot().Services[0].Health != nil {
		t.Fatalf("remove health: %v", err)
	}
	if err := s.SetServiceHealth(99, good); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown service: %v", err)
	}
}
