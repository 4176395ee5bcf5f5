package daemon

import (
	"fmt"
	"net/netip"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// The core is the API's Controller. Requests are parsed here, once, into
// typed values; the state only ever holds those.

var _ api.Controller = (*core)(nil)

// AddService creates a service from "IP:PORT" ("[IPv6]:PORT") and a protocol.
func (c *core) AddService(r api.AddServiceRequest) (api.Service, error) {
	ap, err := netip.ParseAddrPort(r.VIP)
	if err != nil {
		return api.Service{}, fmt.Errorf("%w: vip %q: want IP:PORT ([IPv6]:PORT for IPv6)", config.ErrInvalid, r.VIP)
	}
	proto := ipproto.TCP
	if r.Proto != "" {
		if proto, err = ipproto.ParseL4(r.Proto); err != nil {
			return api.Service{}, fmt.Errorf("%w: %v", config.ErrInvalid, err)
		}
	}
	mode, err := fwdmode.Parse(r.Mode)
	if err != nil {
		return api.Service{}, fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	var svc config.ServiceState
	_, err = c.change(func(st *config.State) (err error) {
		svc, err = st.AddService(ap.Addr(), ap.Port(), proto, mode, r.Health)
		return err
	})
	if err != nil {
		return api.Service{}, err
	}
	return c.serviceView(svc, c.current(), liveState{}), nil
}

// SetServiceHealth sets or removes a service's backend health check.
func (c *core) SetServiceHealth(id uint32, h *api.HealthCheck) error {
	_, err := c.change(func(st *config.State) error { return st.SetServiceHealth(id, h) })
	return err
}

// DeleteService removes a service; see config.State.DeleteService.
func (c *core) DeleteService(id uint32, force bool) error {
	_, err := c.change(func(st *config.State) error { return st.DeleteService(id, force) })
	return err
}

// AddBackend adds "IP[:PORT]" ("[IPv6]:PORT") to a service.
func (c *core) AddBackend(r api.AddBackendRequest) (api.Backend, error) {
	b, err := config.ParseBackend(r.Address)
	if err != nil {
		return api.Backend{}, fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	if r.Weight == 0 {
		r.Weight = b.Weight
	}
	var be config.BackendState
	_, err = c.change(func(st *config.State) (err error) {
		be, err = st.AddBackend(r.ServiceID, b.Addr, b.Port, r.Weight)
		return err
	})
	if err != nil {
		return api.Backend{}, err
	}
	return c.backendView(r.ServiceID, be, c.current(), liveState{}), nil
}

// DrainBackend stops new flows to a backend; tracked flows continue.
func (c *core) DrainBackend(id uint32) error {
	_, err := c.change(func(st *config.State) error { return st.DrainBackend(id) })
	return err
}

// DeleteBackend removes a drained backend.
func (c *core) DeleteBackend(id uint32) error {
	_, err := c.change(func(st *config.State) error { return st.DeleteBackend(id) })
	return err
}

// SetBGP sets (nil: removes) the BGP settings; the speaker restarts with
// them as part of the apply, and a speaker that cannot start refuses the
// change.
func (c *core) SetBGP(s *api.BGPSettings) error {
	var b *config.BGP
	if s != nil {
		var err error
		if b, err = config.ParseBGP(s.ASN, s.RouterID, s.Peers, s.ListenPort, s.HoldSeconds); err != nil {
			return err
		}
	}
	_, err := c.change(func(st *config.State) error { return st.SetBGP(b) })
	return err
}
