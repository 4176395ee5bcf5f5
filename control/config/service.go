package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// Service is a VIP:port/protocol and its backends, as given on the command line.
type Service struct {
	VIP      netip.Addr    `json:"vip"`
	Port     uint16        `json:"port"`
	Proto    ipproto.Proto `json:"proto"`
	Backends []Backend     `json:"backends"`
}

// Backend is a real server; Port 0 in a spec means "the service's port".
type Backend struct {
	Addr   netip.Addr `json:"addr"`
	Port   uint16     `json:"port"`
	Weight uint32     `json:"weight"`
}

func (s Service) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(s.VIP, s.Port), s.Proto)
}

// ParseVIP reads "IP:PORT/PROTO", e.g. "10.0.100.1:80/tcp" or
// "[2001:db8::10]:443/tcp"; "/tcp" may be omitted.
func ParseVIP(s string) (Service, error) {
	addr, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	p, err := ipproto.ParseL4(proto)
	if err != nil {
		return Service{}, fmt.Errorf("vip %q: %w", s, err)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return Service{}, fmt.Errorf("vip %q: want IP:PORT/PROTO ([IPv6]:PORT for IPv6): %w", s, err)
	}
	if ap.Port() == 0 {
		return Service{}, fmt.Errorf("vip %q: want a port 1-65535", s)
	}
	if err := CheckUnicast(ap.Addr(), "VIP"); err != nil {
		return Service{}, fmt.Errorf("vip %q: %w", s, err)
	}
	return Service{VIP: ap.Addr(), Port: ap.Port(), Proto: p}, nil
}

// ParseBackend reads "IP[:PORT][@WEIGHT]", e.g. "10.0.2.11:3306@2",
// "[2001:db8:2::11]:8443@2" or "2001:db8:2::11".
func ParseBackend(s string) (Backend, error) {
	b := Backend{Weight: 1}
	addr, w, hasW := strings.Cut(s, "@")
	if hasW {
		n, err := strconv.ParseUint(w, 10, 32)
		if err != nil || n == 0 {
			return Backend{}, fmt.Errorf("backend %q: weight must be a positive integer", s)
		}
		b.Weight = uint32(n)
	}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		b.Addr, b.Port = ap.Addr(), ap.Port()
		if b.Port == 0 {
			return Backend{}, fmt.Errorf("backend %q: port 0", s)
		}
	} else if a, err2 := netip.ParseAddr(unbracket(addr)); err2 == nil {
		b.Addr = a
	} else {
		return Backend{}, fmt.Errorf("backend %q: want IP[:PORT][@WEIGHT] ([IPv6]:PORT for IPv6): %w", s, err)
	}
	if err := CheckUnicast(b.Addr, "backend"); err != nil {
		return Backend{}, err
	}
	if err := checkWeight(b.Weight); err != nil {
		return Backend{}, fmt.Errorf("backend %q: %w", s, err)
	}
	return b, nil
}

// ParseService reads "PROTO/VIP:PORT=BACKEND,BACKEND..." where each backend
// is as in ParseBackend, e.g. "tcp/10.0.100.1:3307=10.0.2.11:3306,10.0.2.12:3306".
func ParseService(s string) (Service, error) {
	head, list, ok := strings.Cut(s, "=")
	proto, vip, ok2 := strings.Cut(head, "/")
	if !ok || !ok2 {
		return Service{}, fmt.Errorf("service %q: want PROTO/VIP:PORT=BACKEND[,BACKEND...]", s)
	}
	svc, err := ParseVIP(vip + "/" + proto)
	if err != nil {
		return Service{}, fmt.Errorf("service %q: %w", s, err)
	}
	for _, b := range strings.Split(list, ",") {
		be, err := ParseBackend(strings.TrimSpace(b))
		if err != nil {
			return Service{}, fmt.Errorf("service %q: %w", s, err)
		}
		svc.Backends = append(svc.Backends, be)
	}
	return svc, nil
}

// Resolve fills backend ports left at 0 with the service port and checks
// the whole set: no service twice, no backend twice in a service.
func Resolve(svcs []Service) ([]Service, error) {
	seen := map[string]bool{}
	out := make([]Service, len(svcs))
	for i, s := range svcs {
		if seen[s.String()] {
			return nil, fmt.Errorf("service %s given twice", s)
		}
		seen[s.String()] = true
		if len(s.Backends) == 0 {
			return nil, fmt.Errorf("service %s has no backends", s)
		}
		s.Backends = append([]Backend(nil), s.Backends...)
		bseen := map[netip.AddrPort]bool{}
		for j := range s.Backends {
			b := &s.Backends[j]
			if b.Port == 0 {
				b.Port = s.Port
			}
			if err := sameFamily(s.String(), s.VIP, b.Addr); err != nil {
				return nil, err
			}
			ap := netip.AddrPortFrom(b.Addr, b.Port)
			if bseen[ap] {
				return nil, fmt.Errorf("service %s: backend %s given twice", s, ap)
			}
			bseen[ap] = true
		}
		out[i] = s
	}
	return out, nil
}

// unbracket takes "[2001:db8::1]" for "2001:db8::1", as in a URL.
func unbracket(s string) string {
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		return s[1 : len(s)-1]
	}
	return s
}
