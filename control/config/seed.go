package config

import (
	"fmt"
	"net/netip"

	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
)

// Seed is the one rule for services given as flags (--vip/--backend/
// --service): they seed a new state (no state file yet, or memory only)
// and are then kept like any other; once a state file exists it wins.
// Flags it does not agree with are returned as notes for the log, never
// applied, so what an operator deleted through the API stays deleted
// across restarts. Backend ports must be resolved (see Resolve).
func Seed(st *State, flags []Service, bgp *BGP, existing bool) (ignored []string, err error) {
	if bgp != nil {
		switch {
		case !existing:
			if err := st.SetBGP(bgp); err != nil {
				return nil, fmt.Errorf("bgp from the command line: %w", err)
			}
		case !bgp.Equal(st.BGP):
			ignored = append(ignored, "the --bgp-* flags differ from the state file's bgp settings")
		}
	}
	for _, f := range flags {
		cur := st.find(f)
		if existing {
			ignored = append(ignored, differences(cur, f)...)
			continue
		}
		if cur == nil {
			svc, err := st.AddService(f.VIP, f.Port, f.Proto, fwdmode.NAT, nil)
			if err != nil {
				return nil, fmt.Errorf("service %s from the command line: %w", f, err)
			}
			cur, _ = st.Service(svc.ID)
		}
		for _, b := range f.Backends {
			if cur.backend(b.Addr, b.Port) != nil {
				continue
			}
			if _, err := st.AddBackend(cur.ID, b.Addr, b.Port, b.Weight); err != nil {
				return nil, fmt.Errorf("backend %s of %s from the command line: %w", netip.AddrPortFrom(b.Addr, b.Port), f, err)
			}
			cur, _ = st.Service(cur.ID) // AddBackend may have moved the slice
		}
	}
	return ignored, nil
}

func (s *State) find(f Service) *ServiceState {
	for i := range s.Services {
		if c := &s.Services[i]; c.VIP == f.VIP && c.Port == f.Port && c.Proto == f.Proto {
			return c
		}
	}
	return nil
}

func (s *ServiceState) backend(a netip.Addr, port uint16) *BackendState {
	for i := range s.Backends {
		if s.Backends[i].Addr == a && s.Backends[i].Port == port {
			return &s.Backends[i]
		}
	}
	return nil
}

// differences lists what a flag service asks for that the state lacks.
func differences(cur *ServiceState, f Service) []string {
	if cur == nil {
		return []string{fmt.Sprintf("service %s is not in the state file", f)}
	}
	var out []string
	for _, b := range f.Backends {
		ap := netip.AddrPortFrom(b.Addr, b.Port)
		switch have := cur.backend(b.Addr, b.Port); {
		case have == nil:
			out = append(out, fmt.Sprintf("backend %s of service %s is not in the state file", ap, f))
		case have.Weight != b.Weight:
			out = append(out, fmt.Sprintf("backend %s of service %s has weight %d in the state file, not %d", ap, f, have.Weight, b.Weight))
		}
	}
	return out
}
