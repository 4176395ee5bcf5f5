package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

func TestParseService(t *testing.T) {
	s, err := ParseService("tcp/10.0.100.1:3307=10.0.2.11:3306,10.0.2.12@3")
	if err != nil {
		t.Fatal(err)
	}
	if s.VIP != netip.MustParseAddr("10.0.100.1") || s.Port != 3307 || s.Proto != ipproto.TCP || len(s.Backends) != 2 {
		t.Fatalf("%+v", s)
	}
	r, err := Resolve([]Service{s})
	if err != nil {
		t.Fatal(err)
	}
	if r[0].Backends[0].Port != 3306 || r[0].Backends[1].Port != 3307 || r[0].Backends[1].Weight != 3 {
		t.Fatalf("%+v", r[0].Backends)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"10.0.100.1:80/sctp", "want tcp or udp"},
		{"10.0.100.1/tcp", "want IP:PORT/PROTO"},
		{"[::1]:80/tcp", "loopback"},
		{"2001:db8::10:80/tcp", "[IPv6]:PORT"},
		{"[fe80::1]:80/tcp", "link-local"},
		{"[fe80::1%eth0]:80/tcp", "scoped"},
		{"[::ffff:10.0.100.1]:80/tcp", "write 10.0.100.1"},
		{"[ff02::1]:80/tcp", "multicast"},
		{"[::]:80/tcp", "unspecified"},
		{"10.0.100.1:0/udp", "port 1-65535"},
		{"10.0.100.300:80/tcp", "want IP:PORT/PROTO"},
		{"127.0.0.1:80/tcp", "loopback"},
	} {
		if _, err := ParseVIP(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseVIP(%q) = %v, want error with %q", c.in, err, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"10.0.2.11@0", "positive"},
		{"10.0.2.11:0", "port 0"},
		{"backend1", "want IP[:PORT]"},
		{"::1", "loopback"},
		{"[2001:db8::1", "want IP[:PORT]"},
		{"255.255.255.255", "broadcast"},
		{"10.0.2.11@70000", "weight"},
	} {
		if _, err := ParseBackend(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseBackend(%q) = %v, want error with %q", c.in, err, c.want)
		}
	}
	if s, err := ParseVIP("[2001:DB8::10]:443/tcp"); err != nil || s.VIP != netip.MustParseAddr("2001:db8::10") || s.Port != 443 {
		t.Errorf("IPv6 VIP: %+v %v", s, err)
	}
	for in, want := range map[string]Backend{
		"[2001:db8:2::11]:8443@2": {Addr: netip.MustParseAddr("2001:db8:2::11"), Port: 8443, Weight: 2},
		"2001:db8:2::11":          {Addr: netip.MustParseAddr("2001:db8:2::11"), Weight: 1},
		"[2001:db8:2::11]@3":      {Addr: netip.MustParseAddr("2001:db8:2::11"), Weight: 3},
	} {
		if b, err := ParseBackend(in); err != nil || b != want {
			t.Errorf("ParseBackend(%q) = %+v, %v", in, b, err)
		}
	}
	if s, err := ParseVIP("10.0.100.1:80/TCP"); err != nil || s.Proto != ipproto.TCP {
		t.Errorf("upper-case protocol: %+v %v", s, err)
	}
	mixed, err := ParseService("tcp/[2001:db8::10]:80=[2001:db8:2::11]:80,10.0.2.11:80")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve([]Service{mixed}); err == nil || !strings.Contains(err.Error(), "backend 10.0.2.11 is IPv4 but service [2001:db8::10]:80/tcp is IPv6") {
		t.Errorf("mixed families resolved: %v", err)
	}
	if _, err := ParseService("10.0.100.1:80"); err == nil {
		t.Error("service without backends accepted")
	}
	s, _ := ParseVIP("10.0.100.1:80/tcp")
	if _, err := Resolve([]Service{s}); err == nil || !strings.Contains(err.Error(), "no backends") {
		t.Errorf("Resolve without backends: %v", err)
	}
	s.Backends = []Backend{{Addr: netip.MustParseAddr("10.0.2.11")}, {Addr: netip.MustParseAddr("10.0.2.11"), Port: 80}}
	if _, err := Resolve([]Service{s}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate backend: %v", err)
	}
	s.Backends = s.Backends[:1]
	if _, err := Resolve([]Service{s, s}); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("duplicate service: %v", err)
	}
}
