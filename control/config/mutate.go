package config

import (
	"fmt"
	"net/netip"

	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// The changes an operator makes. Each edits a State (a clone the Store
// handed out in Prepare) and checks what it alone can; Validate checks the
// whole result, limits included, before anything is saved.

// AddService creates a service with no backends; h may be nil (no check).
func (s *State) AddService(vip netip.Addr, port uint16, proto ipproto.Proto, mode fwdmode.Mode, h *HealthCheck) (ServiceState, error) {
	svc := ServiceState{ID: s.NextServiceID, VIP: vip, Port: port, Proto: proto, Mode: mode, Health: h}
	if err := svc.validate(); err != nil {
		return ServiceState{}, err
	}
	for _, o := range s.Services {
		if o.VIP == vip && o.Port == port && o.Proto == proto {
			return ServiceState{}, fmt.Errorf("%w: service %s is service %d", ErrExists, svc.Name(), o.ID)
		}
	}
	s.NextServiceID++
	s.Services = append(s.Services, svc)
	return svc, nil
}

// SetServiceHealth sets or (with nil) removes a service's health check.
func (s *State) SetServiceHealth(id uint32, h *HealthCheck) error {
	if err := h.validate(); err != nil {
		return err
	}
	svc, err := s.Service(id)
	if err != nil {
		return err
	}
	svc.Health = h
	return nil
}

// DeleteService removes a service. Unless force is set, every backend must
// be drained first, so live traffic is never cut by accident.
func (s *State) DeleteService(id uint32, force bool) error {
	svc, err := s.Service(id)
	if err != nil {
		return err
	}
	for _, b := range svc.Backends {
		if !b.Drained && !force {
			return fmt.Errorf("%w: service %d has backend %d not drained; drain its backends first or force", ErrConflict, id, b.ID)
		}
	}
	for i := range s.Services {
		if s.Services[i].ID == id {
			s.Services = append(s.Services[:i], s.Services[i+1:]...)
			break
		}
	}
	return nil
}

// AddBackend adds a backend to a service. Port 0 means the service's port.
func (s *State) AddBackend(serviceID uint32, addr netip.Addr, port uint16, weight uint32) (BackendState, error) {
	if err := CheckUnicast(addr, "backend"); err != nil {
		return BackendState{}, err
	}
	if err := checkWeight(weight); err != nil {
		return BackendState{}, err
	}
	svc, err := s.Service(serviceID)
	if err != nil {
		return BackendState{}, err
	}
	if err := SameFamily(*svc, addr); err != nil {
		return BackendState{}, err
	}
	be := BackendState{ID: s.NextBackendID, Addr: addr, Port: port, Weight: weight}
	if be.Port == 0 {
		be.Port = svc.Port
	}
	for _, o := range svc.Backends {
		if o.Addr == be.Addr && o.Port == be.Port {
			return BackendState{}, fmt.Errorf("%w: backend %s is backend %d of service %d", ErrExists,
				netip.AddrPortFrom(addr, be.Port), o.ID, serviceID)
		}
	}
	s.NextBackendID++
	svc.Backends = append(svc.Backends, be)
	return be, nil
}

// DrainBackend stops new flows to a backend; established flows continue.
func (s *State) DrainBackend(id uint32) error {
	svc, i, err := s.Backend(id)
	if err != nil {
		return err
	}
	svc.Backends[i].Drained = true
	return nil
}

// DeleteBackend removes a drained backend.
func (s *State) DeleteBackend(id uint32) error {
	svc, i, err := s.Backend(id)
	if err != nil {
		return err
	}
	if !svc.Backends[i].Drained {
		return fmt.Errorf("%w: backend %d is not drained; drain it first", ErrConflict, id)
	}
	svc.Backends = append(svc.Backends[:i], svc.Backends[i+1:]...)
	return nil
}

// AddFirewallRule adds a deny rule.
func (s *State) AddFirewallRule(r FirewallRule) (FirewallRule, error) {
	if err := r.validate(); err != nil {
		return FirewallRule{}, err
	}
	r.ID = nextID(&s.NextRuleID)
	s.FirewallRules = append(s.FirewallRules, r)
	return r, nil
}

// DeleteFirewallRule removes a rule.
func (s *State) DeleteFirewallRule(id uint32) (err error) {
	s.FirewallRules, err = removeID(s.FirewallRules, id, func(r FirewallRule) uint32 { return r.ID }, "firewall rule")
	return err
}

// AddDosPolicy adds a DoS protection policy.
func (s *State) AddDosPolicy(d DosPolicy) (DosPolicy, error) {
	if err := d.validate(); err != nil {
		return DosPolicy{}, err
	}
	d.ID = nextID(&s.NextPolicyID)
	s.DosPolicies = append(s.DosPolicies, d)
	return d, nil
}

// DeleteDosPolicy removes a policy; the sources it blocked are released.
func (s *State) DeleteDosPolicy(id uint32) (err error) {
	s.DosPolicies, err = removeID(s.DosPolicies, id, func(d DosPolicy) uint32 { return d.ID }, "dos policy")
	return err
}

// nextID hands out the next id of a kind; ids are never reused.
func nextID(next *uint32) uint32 {
	id := *next
	*next++
	return id
}

// removeID deletes the element with id from list, or says it is not there.
func removeID[T any](list []T, id uint32, idOf func(T) uint32, what string) ([]T, error) {
	for i, v := range list {
		if idOf(v) == id {
			return append(list[:i], list[i+1:]...), nil
		}
	}
	return list, fmt.Errorf("%w: %s %d", ErrNotFound, what, id)
}
