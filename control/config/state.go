package config

import (
	"fmt"
	"net/netip"
)

// State is the whole desired state: what the operator asked for, persisted
// across restarts. IDs are never reused, so a stale id in a script fails
// instead of hitting a new object.
type State struct {
	Version       int            `json:"version"`
	NextServiceID uint32         `json:"next_service_id"`
	NextBackendID uint32         `json:"next_backend_id"`
	NextRuleID    uint32         `json:"next_rule_id"`
	NextPolicyID  uint32         `json:"next_policy_id"`
	Services      []ServiceState `json:"services"`
	FirewallRules []FirewallRule `json:"firewall_rules"`
	DosPolicies   []DosPolicy    `json:"dos_policies"`
}

// ServiceState is a service with its id and backends.
type ServiceState struct {
	ID       uint32         `json:"id"`
	VIP      netip.Addr     `json:"vip"`
	Port     uint16         `json:"port"`
	Proto    string         `json:"proto"` // "tcp" or "udp"
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

// Name is "VIP:PORT/PROTO".
func (s ServiceState) Name() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(s.VIP, s.Port), s.Proto)
}

// ProtoNumber is the IP protocol number of the service.
func (s ServiceState) ProtoNumber() uint8 {
	p, _ := ParseProto(s.Proto)
	return p
}

func (s State) clone() State {
	c := s
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
	return c
}

func (s *State) service(id uint32) (*ServiceState, error) {
	for i := range s.Services {
		if s.Services[i].ID == id {
			return &s.Services[i], nil
		}
	}
	return nil, fmt.Errorf("%w: service %d", ErrNotFound, id)
}

func (s *State) backend(id uint32) (*ServiceState, int, error) {
	for i := range s.Services {
		for j := range s.Services[i].Backends {
			if s.Services[i].Backends[j].ID == id {
				return &s.Services[i], j, nil
			}
		}
	}
	return nil, 0, fmt.Errorf("%w: backend %d", ErrNotFound, id)
}

// validate checks the invariants a loaded or edited state must keep.
func (s *State) validate() error {
	if err := s.validateFilters(); err != nil {
		return err
	}
	names := map[string]bool{}
	ids := map[uint32]bool{}
	for _, svc := range s.Services {
		if !svc.VIP.Is4() || svc.Port == 0 {
			return fmt.Errorf("service %d: VIP %s port %d: want IPv4 and port 1-65535", svc.ID, svc.VIP, svc.Port)
		}
		if _, err := ParseProto(svc.Proto); err != nil {
			return fmt.Errorf("service %d: %w", svc.ID, err)
		}
		if err := svc.Health.validate(); err != nil {
			return fmt.Errorf("service %d: %w", svc.ID, err)
		}
		if names[svc.Name()] {
			return fmt.Errorf("%w: service %s", ErrExists, svc.Name())
		}
		names[svc.Name()] = true
		if svc.ID == 0 || svc.ID >= s.NextServiceID {
			return fmt.Errorf("service id %d out of range", svc.ID)
		}
		eps := map[netip.AddrPort]bool{}
		for _, b := range svc.Backends {
			ap := netip.AddrPortFrom(b.Addr, b.Port)
			if !b.Addr.Is4() || b.Port == 0 || b.Weight == 0 {
				return fmt.Errorf("backend %d %s weight %d: want IPv4, port 1-65535, weight >= 1", b.ID, ap, b.Weight)
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
	return nil
}
