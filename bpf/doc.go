// Package bpf loads the scmlb-xsk XDP program, attaches it to interfaces and
// gives typed access to its maps (services, backends, XSKMAP, counters).
package bpf
