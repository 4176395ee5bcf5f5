package declare

import (
	"fmt"
	"net/netip"
	"reflect"

	"github.com/scmlb-xsk/scmlb-xsk/control/config"
)

// Change is one line of a plan: Op is "+" (added), "-" (removed) or "~"
// (changed); What names the object by its natural key.
type Change struct {
	Op      string `json:"op"`
	What    string `json:"what"`
	Service string `json:"service,omitempty"` // the service (VIP:port/proto) it concerns, if any
}

func (c Change) String() string { return c.Op + " " + c.What }

// Diff lists what moving from cur to next changes, in document order
// (removals of a kind first). Objects are matched by id, as Desired keeps
// the ids of what it keeps.
func Diff(cur, next *config.State) []Change {
	var out []Change
	add := func(svc config.ServiceState, op, format string, a ...any) {
		out = append(out, Change{Op: op, What: fmt.Sprintf(format, a...), Service: svc.Name()})
	}
	old, kept := byID(cur.Services, serviceID), byID(next.Services, serviceID)
	for _, s := range cur.Services {
		if _, ok := kept[s.ID]; !ok {
			add(s, "-", "service %s (%d backends)", s.Name(), len(s.Backends))
		}
	}
	for _, s := range next.Services {
		o, ok := old[s.ID]
		if !ok {
			add(s, "+", "service %s %s, health %s, %d backends", s.Name(), s.Mode, checkName(s.Health), len(s.Backends))
			for _, b := range s.Backends {
				add(s, "+", "backend %s of %s weight %d%s", bname(b), s.Name(), b.Weight, drained(b.Drained))
			}
			continue
		}
		if o.Mode != s.Mode {
			add(s, "~", "service %s: mode %s -> %s", s.Name(), o.Mode, s.Mode)
		}
		switch {
		case reflect.DeepEqual(o.Health, s.Health):
		case checkName(o.Health) == checkName(s.Health):
			add(s, "~", "service %s: %s health check settings", s.Name(), checkName(s.Health))
		default:
			add(s, "~", "service %s: health %s -> %s", s.Name(), checkName(o.Health), checkName(s.Health))
		}
		out = append(out, diffBackends(o, s)...)
	}
	out = append(out, diffByID(cur.FirewallRules, next.FirewallRules, func(r config.FirewallRule) uint32 { return r.ID },
		func(r config.FirewallRule) string {
			return fmt.Sprintf("firewall deny %s from %s src ports %s dst ports %s", r.Proto, r.Network, r.SrcPorts, r.DstPorts)
		})...)
	out = append(out, diffByID(cur.DosPolicies, next.DosPolicies, func(p config.DosPolicy) uint32 { return p.ID },
		func(p config.DosPolicy) string {
			return fmt.Sprintf("dos %s %s over %d packets/s blocks for %ds", p.Proto, p.Type, p.LimitPPS, p.BlockSeconds)
		})...)
	return out
}

func diffBackends(o, s config.ServiceState) []Change {
	var out []Change
	was, is := byID(o.Backends, backendID), byID(s.Backends, backendID)
	for _, b := range o.Backends {
		if _, ok := is[b.ID]; !ok {
			out = append(out, Change{Op: "-", What: fmt.Sprintf("backend %s of %s", bname(b), s.Name()), Service: s.Name()})
		}
	}
	for _, b := range s.Backends {
		w, ok := was[b.ID]
		switch {
		case !ok:
			out = append(out, Change{Op: "+", What: fmt.Sprintf("backend %s of %s weight %d%s", bname(b), s.Name(), b.Weight,
				drained(b.Drained)), Service: s.Name()})
		case w.Weight != b.Weight:
			out = append(out, Change{Op: "~", What: fmt.Sprintf("backend %s of %s: weight %d -> %d", bname(b), s.Name(), w.Weight,
				b.Weight), Service: s.Name()})
		}
		if ok && w.Drained != b.Drained {
			state := "drained"
			if !b.Drained {
				state = "takes new flows again"
			}
			out = append(out, Change{Op: "~", What: fmt.Sprintf("backend %s of %s: %s", bname(b), s.Name(), state), Service: s.Name()})
		}
	}
	return out
}

// diffByID lists removed, added and changed objects of one kind.
func diffByID[T comparable](cur, next []T, id func(T) uint32, name func(T) string) []Change {
	var out []Change
	was, is := byID(cur, id), byID(next, id)
	for _, o := range cur {
		if _, ok := is[id(o)]; !ok {
			out = append(out, Change{Op: "-", What: name(o)})
		}
	}
	for _, o := range next {
		w, ok := was[id(o)]
		switch {
		case !ok:
			out = append(out, Change{Op: "+", What: name(o)})
		case w != o:
			out = append(out, Change{Op: "~", What: name(w) + " -> " + name(o)})
		}
	}
	return out
}

// byID indexes objects by their id.
func byID[T any](xs []T, id func(T) uint32) map[uint32]T {
	m := make(map[uint32]T, len(xs))
	for _, x := range xs {
		m[id(x)] = x
	}
	return m
}

func serviceID(s config.ServiceState) uint32 { return s.ID }
func backendID(b config.BackendState) uint32 { return b.ID }

// Removed lists, by service id, the backends of cur that next no longer
// has: their tracked flows lose their backend.
func Removed(cur, next *config.State) map[uint32][]uint32 {
	is := map[uint32]bool{}
	for _, s := range next.Services {
		for _, b := range s.Backends {
			is[b.ID] = true
		}
	}
	out := map[uint32][]uint32{}
	for _, s := range cur.Services {
		for _, b := range s.Backends {
			if !is[b.ID] {
				out[s.ID] = append(out[s.ID], b.ID)
			}
		}
	}
	return out
}

func bname(b config.BackendState) string { return netip.AddrPortFrom(b.Addr, b.Port).String() }

func drained(d bool) string {
	if d {
		return ", drained"
	}
	return ""
}

func checkName(h *config.HealthCheck) string {
	if h == nil {
		return "none"
	}
	return h.Type
}
