package config

import (
	"fmt"
	"net/netip"

	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// State is the whole desired state: what the operator asked for, persisted
// across restarts. IDs are never reused, so a stale id in a script fails
// instead of hitting a new object. A State held by the Store is never
// modified; changes are made to a Clone.
type State struct {
	Version       int            `json:"version"`
	NextServiceID uint32         `json:"next_service_id"`
	NextBackendID uint32         `json:"next_backend_id"`
	NextRuleID    uint32         `json:"next_rule_id"`
	NextPolicyID  uint32         `json:"next_policy_id"`
	Services      []ServiceState `json:"services"`
	FirewallRules []FirewallRule `json:"firewall_rules"`
	DosPolicies   []DosPolicy    `json:"dos_policies"`
	BGP           *BGP           `json:"bgp,omitempty"`
}

// ServiceState is a service with its id and backends.
type ServiceState struct {
	ID       uint32         `json:"id"`
	VIP      netip.Addr     `json:"vip"`
	Port     uint16         `json:"port"`
	Proto    ipproto.Proto  `json:"proto"` // TCP or UDP; "tcp"/"udp" in the file
	Mode     fwdmode.Mode   `json:"mode"`  // absent in files from before modes: nat
	Health   *HealthCheck   `json:"health,omitempty"`
	Backends []BackendState `json:"backends"`
}

// BackendState is a backend of a service.
type BackendState struct {
	ID      uint32     `json:"id"`
	Addr    netip.Addr `json:"addr"`
	Port    uint16     `json:"port"`
	Weight  uint32     `json:"weight"`
	Drained bool       `json:"drained"` // no new flows; established ones continue
}

const stateVersion = 1

// MaxWeight is the largest backend weight, as in IPVS.
const MaxWeight = 65535

// NewState is an empty state whose ids start at 1.
func NewState() *State {
	return &State{Version: stateVersion, NextServiceID: 1, NextBackendID: 1, NextRuleID: 1, NextPolicyID: 1}
}

// Name is "VIP:PORT/PROTO".
func (s ServiceState) Name() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(s.VIP, s.Port), s.Proto)
}

// Clone returns a deep copy to change.
func (s *State) Clone() *State {
	c := *s
	c.Services = make([]ServiceState, len(s.Services))
	for i, svc := range s.Services {
		svc.Backends = append([]BackendState(nil), svc.Backends...)
		if svc.Health != nil {
			h := *svc.Health
			svc.Health = &h
		}
		c.Services[i] = svc
	}
	c.FirewallRules = append([]FirewallRule(nil), s.FirewallRules...)
	c.DosPolicies = append([]DosPolicy(nil), s.DosPolicies...)
	c.BGP = s.BGP.clone()
	return &c
}

// Service returns the service with an id.
func (s *State) Service(id uint32) (*ServiceState, error) {
	for i := range s.Services {
		if s.Services[i].ID == id {
			return &s.Services[i], nil
		}
	}
	return nil, fmt.Errorf("%w: service %d", ErrNotFound, id)
}

// Backend returns the service holding a backend id and the backend's index.
func (s *State) Backend(id uint32) (*ServiceState, int, error) {
	for i := range s.Services {
		for j := range s.Services[i].Backends {
			if s.Services[i].Backends[j].ID == id {
				return &s.Services[i], j, nil
			}
		}
	}
	return nil, 0, fmt.Errorf("%w: backend %d", ErrNotFound, id)
}

// Validate checks the invariants a loaded or changed state must keep,
// including the limits.
func (s *State) Validate(l Limits) error {
	if err := s.validateFilters(l); err != nil {
		return err
	}
	if err := s.BGP.validate(); err != nil {
		return err
	}
	type key struct {
		vip   netip.Addr
		port  uint16
		proto ipproto.Proto
	}
	names := make(map[key]bool, len(s.Services))
	ids := map[uint32]bool{}
	for _, svc := range s.Services {
		if err := svc.validate(); err != nil {
			return err
		}
		k := key{svc.VIP, svc.Port, svc.Proto}
		if names[k] {
			return fmt.Errorf("%w: service %s", ErrExists, svc.Name())
		}
		names[k] = true
		if svc.ID == 0 || svc.ID >= s.NextServiceID {
			return fmt.Errorf("service id %d out of range", svc.ID)
		}
		eps := map[netip.AddrPort]bool{}
		for _, b := range svc.Backends {
			ap := netip.AddrPortFrom(b.Addr, b.Port)
			if err := b.validate(); err != nil {
				return fmt.Errorf("service %s: %w", svc.Name(), err)
			}
			if eps[ap] {
				return fmt.Errorf("%w: backend %s in service %s", ErrExists, ap, svc.Name())
			}
			eps[ap] = true
			if b.ID == 0 || b.ID >= s.NextBackendID || ids[b.ID] {
				return fmt.Errorf("backend id %d out of range or used twice", b.ID)
			}
			ids[b.ID] = true
		}
	}
	return s.checkLimits(l)
}

func (svc ServiceState) validate() error {
	if err := CheckUnicast(svc.VIP, "VIP"); err != nil {
		return err
	}
	if svc.Port == 0 {
		return fmt.Errorf("%w: service %s: port 0: want 1-65535", ErrInvalid, svc.Name())
	}
	if !svc.Proto.IsL4() {
		return fmt.Errorf("%w: service %d: protocol %s: want tcp or udp", ErrInvalid, svc.ID, svc.Proto)
	}
	if err := svc.Health.validate(); err != nil {
		return fmt.Errorf("service %s: %w", svc.Name(), err)
	}
	if svc.VIP.Is6() && svc.Mode == fwdmode.DSRIPIP {
		return fmt.Errorf("%w: service %s: %s is IPv4 only (IPv6 backends: use dsr-l2, nat or fullnat)", ErrInvalid, svc.Name(), svc.Mode)
	}
	for _, b := range svc.Backends {
		if err := SameFamily(svc, b.Addr); err != nil {
			return err
		}
	}
	if svc.Mode.DSR() {
		for _, b := range svc.Backends {
			if b.Port != svc.Port {
				return fmt.Errorf("%w: service %s is %s: backend %s must use the service's port %d (DSR cannot map ports: "+
					"the backend answers from the VIP:port itself)", ErrInvalid, svc.Name(), svc.Mode, netip.AddrPortFrom(b.Addr, b.Port), svc.Port)
			}
		}
	}
	if _, err := fwdmode.Parse(svc.Mode.String()); err != nil {
		return fmt.Errorf("%w: service %s: %v", ErrInvalid, svc.Name(), err)
	}
	return nil
}

// SameFamily refuses a backend of the other address family: a service is
// IPv4 or IPv6, and the load balancer does not translate between them.
func SameFamily(svc ServiceState, backend netip.Addr) error {
	return sameFamily(svc.Name(), svc.VIP, backend)
}

func sameFamily(service string, vip, backend netip.Addr) error {
	if backend.Is4() != vip.Is4() {
		return fmt.Errorf("%w: backend %s is %s but service %s is %s: a service's backends are of its VIP's family",
			ErrInvalid, backend, Family(backend), service, Family(vip))
	}
	return nil
}

func (b BackendState) validate() error {
	if err := CheckUnicast(b.Addr, "backend"); err != nil {
		return err
	}
	if b.Port == 0 {
		return fmt.Errorf("%w: backend %s: port 0: want 1-65535", ErrInvalid, b.Addr)
	}
	return checkWeight(b.Weight)
}

func checkWeight(w uint32) error {
	if w == 0 || w > MaxWeight {
		return fmt.Errorf("%w: weight %d: want 1 to %d (drain a backend to stop new flows)", ErrInvalid, w, MaxWeight)
	}
	return nil
}
