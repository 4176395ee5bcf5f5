package declare

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// Health check defaults, as the CLI's flags have them.
const (
	defInterval = 2 * time.Second
	defTimeout  = time.Second
	defRise     = 2
	defFall     = 3
	defPath     = "/"
	defStatus   = 200
	defPayload  = "ping"
)

// FromState writes a state as a document, every field spelled out, in the
// state's order: FromState(Desired(st, FromState(st))) is FromState(st).
// BGP settings are not part of the document.
func FromState(st *config.State) Doc {
	d := Doc{Services: []Service{}}
	for _, s := range st.Services {
		svc := Service{VIP: netip.AddrPortFrom(s.VIP, s.Port).String(), Proto: s.Proto.String(), Mode: s.Mode.String(),
			Backends: []Backend{}}
		if h := s.Health; h != nil {
			svc.Health = &Health{Type: h.Type, Port: h.Port, Path: h.Path, Status: h.Status, Payload: h.Payload,
				Interval: (time.Duration(h.IntervalMs) * time.Millisecond).String(),
				Timeout:  (time.Duration(h.TimeoutMs) * time.Millisecond).String(), Rise: h.Rise, Fall: h.Fall}
		}
		for _, b := range s.Backends {
			svc.Backends = append(svc.Backends, Backend{Address: netip.AddrPortFrom(b.Addr, b.Port).String(),
				Weight: b.Weight, Drained: b.Drained})
		}
		d.Services = append(d.Services, svc)
	}
	for _, r := range st.FirewallRules {
		d.Firewall = append(d.Firewall, Rule{Network: r.Network.String(), Proto: r.Proto.String(),
			SrcPorts: r.SrcPorts.String(), DstPorts: r.DstPorts.String()})
	}
	for _, p := range st.DosPolicies {
		d.DoS = append(d.DoS, Policy{Proto: p.Proto.String(), Type: p.Type, LimitPPS: p.LimitPPS,
			Block: (time.Duration(p.BlockSeconds) * time.Second).String()})
	}
	return d
}

// Desired is cur changed to what d describes: services, backends, rules
// and policies d names keep their ids in cur (so counters, slots and
// conntrack's backend ids stay theirs), the rest of cur's go, and what is
// new gets fresh ids. BGP settings stay as they are. The result is not yet
// validated as a whole (the store does that); errors here name the
// document's entry ("services[1].backends[0]").
func Desired(cur *config.State, d Doc) (*config.State, error) {
	next := cur.Clone()
	next.Services, next.FirewallRules, next.DosPolicies = nil, nil, nil
	svcIDs := map[string]config.ServiceState{}
	for _, s := range cur.Services {
		svcIDs[s.Name()] = s
	}
	seen := map[string]int{}
	for i, ds := range d.Services {
		s, err := service(ds)
		if err != nil {
			return nil, fmt.Errorf("services[%d]: %w", i, err)
		}
		if j, dup := seen[s.Name()]; dup {
			return nil, fmt.Errorf("%w: services[%d]: %s is services[%d] too", config.ErrInvalid, i, s.Name(), j)
		}
		seen[s.Name()] = i
		old, kept := svcIDs[s.Name()]
		if kept {
			s.ID = old.ID
		} else {
			s.ID = next.NextServiceID
			next.NextServiceID++
		}
		beIDs := map[netip.AddrPort]uint32{}
		for _, b := range old.Backends {
			beIDs[netip.AddrPortFrom(b.Addr, b.Port)] = b.ID
		}
		beSeen := map[netip.AddrPort]int{}
		for j, db := range ds.Backends {
			b, err := backend(db, s.Port)
			if err != nil {
				return nil, fmt.Errorf("services[%d].backends[%d]: %w", i, j, err)
			}
			ap := netip.AddrPortFrom(b.Addr, b.Port)
			if k, dup := beSeen[ap]; dup {
				return nil, fmt.Errorf("%w: services[%d].backends[%d]: %s is backends[%d] too", config.ErrInvalid, i, j, ap, k)
			}
			beSeen[ap] = j
			if id, ok := beIDs[ap]; ok {
				b.ID = id
			} else {
				b.ID = next.NextBackendID
				next.NextBackendID++
			}
			s.Backends = append(s.Backends, b)
		}
		next.Services = append(next.Services, s)
	}
	if err := desiredRules(cur, next, d.Firewall); err != nil {
		return nil, err
	}
	if err := desiredPolicies(cur, next, d.DoS); err != nil {
		return nil, err
	}
	return next, nil
}

func service(ds Service) (config.ServiceState, error) {
	proto := ds.Proto
	if proto == "" {
		proto = "tcp"
	}
	v, err := config.ParseVIP(ds.VIP + "/" + proto)
	if err != nil {
		return config.ServiceState{}, fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	mode, err := fwdmode.Parse(ds.Mode)
	if err != nil {
		return config.ServiceState{}, fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	s := config.ServiceState{VIP: v.VIP, Port: v.Port, Proto: v.Proto, Mode: mode}
	if ds.Health != nil {
		if s.Health, err = health(*ds.Health); err != nil {
			return config.ServiceState{}, err
		}
	}
	return s, nil
}

func health(h Health) (*config.HealthCheck, error) {
	dur := func(s string, def time.Duration, what string) (uint32, error) {
		if s == "" {
			return uint32(def / time.Millisecond), nil
		}
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 || v%time.Millisecond != 0 {
			return 0, fmt.Errorf("%w: health %s %q: want a duration in whole milliseconds such as 2s or 500ms", config.ErrInvalid, what, s)
		}
		return uint32(v / time.Millisecond), nil
	}
	c := &config.HealthCheck{Type: strings.ToLower(h.Type), Port: h.Port, Path: cmp.Or(h.Path, defPath),
		Status: cmp.Or(h.Status, defStatus), Payload: cmp.Or(h.Payload, defPayload), Rise: cmp.Or(h.Rise, defRise),
		Fall: cmp.Or(h.Fall, defFall)}
	var err error
	if c.IntervalMs, err = dur(h.Interval, defInterval, "interval"); err != nil {
		return nil, err
	}
	if c.TimeoutMs, err = dur(h.Timeout, defTimeout, "timeout"); err != nil {
		return nil, err
	}
	return c, nil
}

func backend(db Backend, servicePort uint16) (config.BackendState, error) {
	b, err := config.ParseBackend(db.Address)
	if err != nil {
		return config.BackendState{}, fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	if strings.Contains(db.Address, "@") {
		return config.BackendState{}, fmt.Errorf("%w: backend %q: give the weight as weight:, not @", config.ErrInvalid, db.Address)
	}
	return config.BackendState{Addr: b.Addr, Port: cmp.Or(b.Port, servicePort), Weight: cmp.Or(db.Weight, 1), Drained: db.Drained}, nil
}

func desiredRules(cur, next *config.State, rules []Rule) error {
	ids := map[config.FirewallRule]uint32{}
	for _, r := range cur.FirewallRules {
		k := r
		k.ID = 0
		ids[k] = r.ID
	}
	for i, dr := range rules {
		network, err := netip.ParsePrefix(dr.Network)
		if err != nil {
			return fmt.Errorf("%w: firewall[%d]: network %q: want a CIDR such as 10.0.0.0/8 or 2001:db8::/32", config.ErrInvalid, i, dr.Network)
		}
		r := config.FirewallRule{Network: network}
		if r.Proto, err = config.ParseFilterProto(dr.Proto); err != nil {
			return fmt.Errorf("firewall[%d]: %w", i, err)
		}
		if r.SrcPorts, err = config.ParsePortRange(dr.SrcPorts); err != nil {
			return fmt.Errorf("%w: firewall[%d]: src_ports: %v", config.ErrInvalid, i, err)
		}
		if r.DstPorts, err = config.ParsePortRange(dr.DstPorts); err != nil {
			return fmt.Errorf("%w: firewall[%d]: dst_ports: %v", config.ErrInvalid, i, err)
		}
		if id, ok := ids[r]; ok {
			r.ID = id
			delete(ids, r) // a duplicate in the document gets a new id; Validate refuses it
		} else {
			r.ID = next.NextRuleID
			next.NextRuleID++
		}
		next.FirewallRules = append(next.FirewallRules, r)
	}
	return nil
}

func desiredPolicies(cur, next *config.State, ps []Policy) error {
	ids := map[[2]string]uint32{}
	for _, p := range cur.DosPolicies {
		ids[[2]string{p.Proto.String(), p.Type}] = p.ID
	}
	for i, dp := range ps {
		proto, err := ipproto.Parse(dp.Proto)
		if err != nil {
			return fmt.Errorf("%w: dos[%d]: %v", config.ErrInvalid, i, err)
		}
		block, err := time.ParseDuration(dp.Block)
		if err != nil || block <= 0 || block%time.Second != 0 {
			return fmt.Errorf("%w: dos[%d]: block %q: want whole seconds such as 30s or 5m", config.ErrInvalid, i, dp.Block)
		}
		p := config.DosPolicy{Proto: proto, Type: config.ParseDosType(dp.Type), LimitPPS: dp.LimitPPS,
			BlockSeconds: uint32(block / time.Second)}
		k := [2]string{p.Proto.String(), p.Type}
		if id, ok := ids[k]; ok {
			p.ID = id
			delete(ids, k)
		} else {
			p.ID = next.NextPolicyID
			next.NextPolicyID++
		}
		next.DosPolicies = append(next.DosPolicies, p)
	}
	return nil
}
