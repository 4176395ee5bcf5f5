package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Counter is a packet and byte count summed over CPUs.
type Counter struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// ProtoStats returns the per-protocol counters of the XDP program.
func (p *Program) ProtoStats() (map[string]Counter, error) {
	return readCounters(p.objs.ProtoStats, ProtoNames())
}

// VerdictStats returns how many packets got each XDP verdict.
func (p *Program) VerdictStats() (map[string]Counter, error) {
	return readCounters(p.objs.VerdictStats, VerdictNames())
}

func readCounters(m *ebpf.Map, names []string) (map[string]Counter, error) {
	out := make(map[string]Counter, len(names))
	for i, name := range names {
		c, err := sumPerCPU(m, uint32(i))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = c
	}
	return out, nil
}

// sumPerCPU adds up a per-CPU counter slot.
func sumPerCPU(m *ebpf.Map, key uint32) (Counter, error) {
	var perCPU []xdpCounter
	if err := m.Lookup(key, &perCPU); err != nil {
		return Counter{}, fmt.Errorf("read %s[%d]: %w", m, key, err)
	}
	var sum Counter
	for _, c := range perCPU {
		sum.Packets += c.Packets
		sum.Bytes += c.Bytes
	}
	return sum, nil
}
