package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
)

// Errors the API maps to status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
)

// Store holds the desired state and persists every change to a file before
// it takes effect. A change that fails validation or cannot be written
// leaves the state as it was.
type Store struct {
	mu    sync.Mutex
	path  string // "" keeps the state in memory only
	state State
}

// Open loads the state file at path, or starts empty if it does not exist.
// A file that cannot be parsed is an error: it is never overwritten.
func Open(path string) (*Store, error) {
	s := &Store{path: path, state: State{Version: stateVersion, NextServiceID: 1, NextBackendID: 1, NextRuleID: 1, NextPolicyID: 1}}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	// Files written before firewall rules existed have no counters for them.
	st.NextRuleID, st.NextPolicyID = max(st.NextRuleID, 1), max(st.NextPolicyID, 1)
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state file %s: version %d, this build reads %d", path, st.Version, stateVersion)
	}
	if err := st.validate(); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	s.state = st
	return s, nil
}

// Snapshot returns a copy of the current state.
func (s *Store) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.clone()
}

// update applies fn to a copy, validates and persists it, then commits.
func (s *Store) update(fn func(*State) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.state.clone()
	if err := fn(&next); err != nil {
		return err
	}
	if err := next.validate(); err != nil {
		return err
	}
	if err := s.write(next); err != nil {
		return err
	}
	s.state = next
	return nil
}

// write replaces the file atomically: a crash leaves the old or the new state.
func (s *Store) write(st State) error {
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".state-*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("replace state file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// AddService creates a service with no backends; h may be nil (no check).
func (s *Store) AddService(vip netip.Addr, port uint16, proto string, h *HealthCheck) (ServiceState, error) {
	if err := h.validate(); err != nil {
		return ServiceState{}, err
	}
	if _, err := ParseProto(proto); err != nil {
		return ServiceState{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !vip.Is4() || port == 0 {
		return ServiceState{}, fmt.Errorf("%w: VIP %s port %d: want IPv4 and port 1-65535", ErrInvalid, vip, port)
	}
	var svc ServiceState
	err := s.update(func(st *State) error {
		svc = ServiceState{ID: st.NextServiceID, VIP: vip, Port: port, Proto: proto, Health: h}
		for _, o := range st.Services {
			if o.Name() == svc.Name() {
				return fmt.Errorf("%w: service %s is service %d", ErrExists, svc.Name(), o.ID)
			}
		}
		st.NextServiceID++
		st.Services = append(st.Services, svc)
		return nil
	})
	return svc, err
}

// DeleteService removes a service. Unless force is set, every backend must
// be drained first, so live traffic is never cut by accident.
func (s *Store) DeleteService(id uint32, force bool) error {
	return s.update(func(st *State) error {
		svc, err := st.service(id)
		if err != nil {
			return err
		}
		for _, b := range svc.Backends {
			if !b.Drained && !force {
				return fmt.Errorf("%w: service %d has backend %d not drained; drain its backends first or force", ErrConflict, id, b.ID)
			}
		}
		for i := range st.Services {
			if st.Services[i].ID == id {
				st.Services = append(st.Services[:i], st.Services[i+1:]...)
				break
			}
		}
		return nil
	})
}

// AddBackend adds a backend to a service. Port 0 means the service's port.
func (s *Store) AddBackend(serviceID uint32, addr netip.Addr, port uint16, weight uint32) (BackendState, error) {
	if !addr.Is4() {
		return BackendState{}, fmt.Errorf("%w: backend address %s: only IPv4 is supported", ErrInvalid, addr)
	}
	if weight == 0 {
		return BackendState{}, fmt.Errorf("%w: weight must be >= 1 (drain a backend to stop new flows)", ErrInvalid)
	}
	var be BackendState
	err := s.update(func(st *State) error {
		svc, err := st.service(serviceID)
		if err != nil {
			return err
		}
		be = BackendState{ID: st.NextBackendID, Addr: addr, Port: port, Weight: weight}
		if be.Port == 0 {
			be.Port = svc.Port
		}
		for _, o := range svc.Backends {
			if o.Addr == be.Addr && o.Port == be.Port {
				return fmt.Errorf("%w: backend %s is backend %d of service %d", ErrExists,
					netip.AddrPortFrom(addr, be.Port), o.ID, serviceID)
			}
		}
		st.NextBackendID++
		svc.Backends = append(svc.Backends, be)
		return nil
	})
	return be, err
}

// DrainBackend stops new flows to a backend; established flows continue.
func (s *Store) DrainBackend(id uint32) error {
	return s.update(func(st *State) error {
		svc, i, err := st.backend(id)
		if err != nil {
			return err
		}
		svc.Backends[i].Drained = true
		return nil
	})
}

// DeleteBackend removes a drained backend.
func (s *Store) DeleteBackend(id uint32) error {
	return s.update(func(st *State) error {
		svc, i, err := st.backend(id)
		if err != nil {
			return err
		}
		if !svc.Backends[i].Drained {
			return fmt.Errorf("%w: backend %d is not drained; drain it first", ErrConflict, id)
		}
		svc.Backends = append(svc.Backends[:i], svc.Backends[i+1:]...)
		return nil
	})
}

// Ensure adds svc and any of its backends that are missing; it is how the
// `run` flags seed the state, and repeating it after a restart changes
// nothing. Backend ports must already be resolved (see Resolve).
func (s *Store) Ensure(svc Service) error {
	return s.update(func(st *State) error {
		proto := ProtoName(svc.Proto)
		var cur *ServiceState
		for i := range st.Services {
			if st.Services[i].VIP == svc.VIP && st.Services[i].Port == svc.Port && st.Services[i].Proto == proto {
				cur = &st.Services[i]
			}
		}
		if cur == nil {
			st.Services = append(st.Services, ServiceState{ID: st.NextServiceID, VIP: svc.VIP, Port: svc.Port, Proto: proto})
			st.NextServiceID++
			cur = &st.Services[len(st.Services)-1]
		}
	backends:
		for _, b := range svc.Backends {
			for _, o := range cur.Backends {
				if o.Addr == b.Addr && o.Port == b.Port {
					continue backends
				}
			}
			cur.Backends = append(cur.Backends, BackendState{ID: st.NextBackendID, Addr: b.Addr, Port: b.Port, Weight: b.Weight})
			st.NextBackendID++
		}
		return nil
	})
}
