package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/maglev"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// Config is the whole desired state the dataplane needs.
type Config struct {
	UpstreamMAC packet.MAC // source MAC of replies sent to clients
	BackendMAC  packet.MAC // source MAC of requests sent to backends
	Services    []Service
}

// Service is a VIP:port/protocol and its backends.
type Service struct {
	ID       uint32
	VIP      netip.Addr
	Port     uint16
	Proto    uint8
	Backends []Backend
}

// Backend is one real server of a service.
type Backend struct {
	ID     uint32 // unique across services, stable while the backend exists
	Addr   netip.Addr
	Port   uint16
	Weight uint32     // 0: no new flows (drained); established flows continue
	MAC    packet.MAC // next hop; zero while unresolved
}

// svcKey packs VIP, port and protocol into one word: a Go map with an
// integer key skips hashing a struct on every packet.
type svcKey uint64

func keyOf(addr packet.Addr, port uint16, proto uint8) svcKey {
	return svcKey(uint64(addr[0])<<56 | uint64(addr[1])<<48 | uint64(addr[2])<<40 | uint64(addr[3])<<32 |
		uint64(port)<<8 | uint64(proto))
}

// table is the immutable, compiled form of a Config.
type table struct {
	upMAC, downMAC packet.MAC
	services       map[svcKey]*service
	backends       map[uint32]*backend
}

type service struct {
	id       uint32
	backends []*backend
	maglev   *maglev.Table
}

type backend struct {
	id      uint32
	service uint32
	addr    packet.Addr
	port    uint16
	mac     packet.MAC
	stats   *BackendStats
}

func compile(c Config, stats func(id uint32) *BackendStats) (*table, error) {
	t := &table{upMAC: c.UpstreamMAC, downMAC: c.BackendMAC,
		services: map[svcKey]*service{}, backends: map[uint32]*backend{}}
	for _, s := range c.Services {
		if !s.VIP.Is4() {
			return nil, fmt.Errorf("service %d: VIP %s is not IPv4", s.ID, s.VIP)
		}
		if s.Proto != packet.ProtoTCP && s.Proto != packet.ProtoUDP {
			return nil, fmt.Errorf("service %d: protocol %d is not tcp or udp", s.ID, s.Proto)
		}
		k := keyOf(packet.AddrFrom(s.VIP), s.Port, s.Proto)
		if _, dup := t.services[k]; dup {
			return nil, fmt.Errorf("service %s:%d/%d defined twice", s.VIP, s.Port, s.Proto)
		}
		svc := &service{id: s.ID}
		var mb []maglev.Backend
		for _, b := range s.Backends {
			if !b.Addr.Is4() {
				return nil, fmt.Errorf("backend %d: %s is not IPv4", b.ID, b.Addr)
			}
			if _, dup := t.backends[b.ID]; dup {
				return nil, fmt.Errorf("backend id %d used twice", b.ID)
			}
			be := &backend{id: b.ID, service: s.ID, addr: packet.AddrFrom(b.Addr), port: b.Port, mac: b.MAC, stats: stats(b.ID)}
			t.backends[b.ID] = be
			svc.backends = append(svc.backends, be)
			mb = append(mb, maglev.Backend{Key: netip.AddrPortFrom(b.Addr, b.Port).String(), Weight: b.Weight})
		}
		svc.maglev = maglev.Build(mb, maglev.SizeFor(len(mb)))
		t.services[k] = svc
	}
	return t, nil
}
