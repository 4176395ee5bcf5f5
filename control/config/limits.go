package config

import (
	"fmt"
	"net/netip"

	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// Limits bound the desired state. The daemon fills them from the XDP
// program's compiled limits (bpf/include/consts.h), so a state that passes
// here always fits the maps; a change beyond one is refused with
// ErrConflict naming it, before anything is saved.
type Limits struct {
	Services           int // MAX_SERVICES
	Backends           int // MAX_BACKENDS: distinct backend ip:port/proto
	BackendsPerService int // MAX_BACKENDS_PER_SERVICE
	FirewallRules      int // MAX_FW_RULES
	RulesPerPrefix     int // MAX_RULES_PER_PREFIX
	DosPolicies        int // MAX_DOS_POLICIES
}

func limitError(n int, what, name string) error {
	return fmt.Errorf("%w: limit reached: at most %d %s (%s)", ErrConflict, n, what, name)
}

// checkLimits counts the state against l; zero limits are not checked.
func (s *State) checkLimits(l Limits) error {
	if l.Services > 0 && len(s.Services) > l.Services {
		return limitError(l.Services, "services", "MAX_SERVICES")
	}
	type ep struct {
		a     netip.Addr
		port  uint16
		proto ipproto.Proto
	}
	eps := map[ep]bool{}
	for _, svc := range s.Services {
		if l.BackendsPerService > 0 && len(svc.Backends) > l.BackendsPerService {
			return limitError(l.BackendsPerService, "backends in service "+svc.Name(), "MAX_BACKENDS_PER_SERVICE")
		}
		for _, b := range svc.Backends {
			eps[ep{b.Addr, b.Port, svc.Proto}] = true
		}
	}
	if l.Backends > 0 && len(eps) > l.Backends {
		return limitError(l.Backends, "distinct backend endpoints over all services", "MAX_BACKENDS")
	}
	if l.FirewallRules > 0 && len(s.FirewallRules) > l.FirewallRules {
		return limitError(l.FirewallRules, "firewall rules", "MAX_FW_RULES")
	}
	if l.DosPolicies > 0 && len(s.DosPolicies) > l.DosPolicies {
		return limitError(l.DosPolicies, "DoS policies", "MAX_DOS_POLICIES")
	}
	return nil
}
