package daemon

import (
	"fmt"
	"net/netip"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/control/health"
)

// The daemon is the API's Controller: every change goes to the store (which
// validates and persists it) and then to the dataplane in one Reconfig.

var _ api.Controller = (*Daemon)(nil)

// change applies a store change and pushes the new state. If the push
// fails, the state is already persisted and the next refresh retries it.
func (d *Daemon) change(fn func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := fn(); err != nil {
		return err
	}
	d.syncHealth()
	if err := d.reconfig(); err != nil {
		return fmt.Errorf("saved, but not yet applied to the dataplane: %w", err)
	}
	return nil
}

// AddService creates a service from "IPv4:PORT" and a protocol.
func (d *Daemon) AddService(r api.AddServiceRequest) (api.Service, error) {
	ap, err := netip.ParseAddrPort(r.VIP)
	if err != nil {
		return api.Service{}, fmt.Errorf("%w: vip %q: want IPv4:PORT", config.ErrInvalid, r.VIP)
	}
	var svc config.ServiceState
	err = d.change(func() (err error) {
		svc, err = d.store.AddService(ap.Addr(), ap.Port(), r.Proto, r.Health)
		return err
	})
	if err != nil {
		return api.Service{}, err
	}
	return d.serviceView(svc, liveState{}), nil
}

// SetServiceHealth sets or removes a service's backend health check.
func (d *Daemon) SetServiceHealth(id uint32, h *api.HealthCheck) error {
	return d.change(func() error { return d.store.SetServiceHealth(id, h) })
}

// syncHealth makes the probes match the services' health checks. Callers
// hold d.mu.
func (d *Daemon) syncHealth() {
	var targets []health.Target
	for _, s := range d.store.Snapshot().Services {
		if s.Health == nil {
			continue
		}
		chk := s.Health.Check()
		for _, b := range s.Backends {
			port := b.Port
			if chk.Port != 0 {
				port = chk.Port
			}
			targets = append(targets, health.Target{ID: b.ID, Addr: netip.AddrPortFrom(b.Addr, port), Check: chk})
		}
	}
	d.health.Sync(targets)
}

// DeleteService removes a service; see config.Store.DeleteService.
func (d *Daemon) DeleteService(id uint32, force bool) error {
	return d.change(func() error { return d.store.DeleteService(id, force) })
}

// AddBackend adds "IPv4[:PORT]" to a service.
func (d *Daemon) AddBackend(r api.AddBackendRequest) (api.Backend, error) {
	b, err := config.ParseBackend(r.Address)
	if err != nil {
		return api.Backend{}, fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	if r.Weight == 0 {
		r.Weight = b.Weight
	}
	var be config.BackendState
	err = d.change(func() (err error) {
		be, err = d.store.AddBackend(r.ServiceID, b.Addr, b.Port, r.Weight)
		return err
	})
	if err != nil {
		return api.Backend{}, err
	}
	return d.backendView(r.ServiceID, be, liveState{}), nil
}

// DrainBackend stops new flows to a backend; tracked flows continue.
func (d *Daemon) DrainBackend(id uint32) error {
	return d.change(func() error { return d.store.DrainBackend(id) })
}

// DeleteBackend removes a drained backend.
func (d *Daemon) DeleteBackend(id uint32) error {
	return d.change(func() error { return d.store.DeleteBackend(id) })
}
