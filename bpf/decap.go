package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Decap is the backend side of dsr-ipip: an XDP program that strips the
// outer header of IPv4-in-IPv4 packets addressed to this host, so the inner
// packet (client -> VIP) reaches the stack as if it had come directly.
type Decap struct {
	objs  decapObjects
	links map[int]link.Link
	addrs *mirror[uint32, uint8]
	vips  *mirror[uint32, uint8]
}

// LoadDecap loads the decapsulation program and creates its maps.
func LoadDecap() (*Decap, error) {
	d := &Decap{links: map[int]link.Link{}}
	if err := loadDecapObjects(&d.objs, nil); err != nil {
		return nil, loadError("decap", err)
	}
	d.addrs = newMirror[uint32, uint8](d.objs.DecapAddrs)
	d.vips = newMirror[uint32, uint8](d.objs.DecapVips)
	return d, nil
}

// SetAddrs replaces the host's addresses: IPIP packets to them are decapsulated.
func (d *Decap) SetAddrs(addrs []netip.Addr) error {
	want := map[uint32]uint8{}
	for _, a := range addrs {
		if a.Is4() {
			want[v4Key(a)] = 1
		}
	}
	return d.addrs.sync(want)
}

// SetVIPs limits decapsulation to inner packets to these VIPs (none: any).
func (d *Decap) SetVIPs(vips []netip.Addr) error {
	want := map[uint32]uint8{}
	for _, a := range vips {
		if !a.Is4() {
			return fmt.Errorf("decap VIP %s: IPIP decapsulation is IPv4 only", a)
		}
		want[v4Key(a)] = 1
	}
	if err := d.vips.sync(want); err != nil {
		return err
	}
	only := uint32(0)
	if len(want) > 0 {
		only = 1
	}
	if err := d.objs.DecapVipsOnly.Set(only); err != nil {
		return fmt.Errorf("set decap_vips_only: %w", err)
	}
	return nil
}

// Attach attaches to ifindex through a bpf_link (detached when the process ends).
func (d *Decap) Attach(ifindex int, mode Mode) error {
	l, err := attachXDP(d.objs.XdpDecap, ifindex, mode)
	if err != nil {
		return err
	}
	d.links[ifindex] = l
	return nil
}

// Program is the XDP program, for BPF_PROG_TEST_RUN.
func (d *Decap) Program() *ebpf.Program { return d.objs.XdpDecap }

// Stats counts packets by what the program did with them.
func (d *Decap) Stats() (map[string]uint64, error) {
	names := decapNames()
	out := make(map[string]uint64, len(names))
	for i, n := range names {
		var perCPU []uint64
		if err := d.objs.DecapStats.Lookup(uint32(i), &perCPU); err != nil {
			return nil, fmt.Errorf("read decap_stats[%d]: %w", i, err)
		}
		for _, v := range perCPU {
			out[n] += v
		}
	}
	return out, nil
}

// Close detaches and releases the program and maps.
func (d *Decap) Close() error {
	var errs []error
	for ifindex, l := range d.links {
		errs = append(errs, l.Close())
		delete(d.links, ifindex)
	}
	errs = append(errs, d.objs.Close())
	return errors.Join(errs...)
}

// decapNames are the decap verdicts' names (done, not_ours, ...) from BTF.
var decapNames = sync.OnceValue(func() []string {
	spec, err := loadDecap()
	if err != nil {
		panic(fmt.Sprintf("parse decap object: %v", err))
	}
	return mustEnum(spec.Types, "decap_verdict", "DECAP_", int(decapDecapVerdictDECAP_MAX))
})

// v4Key is an IPv4 address as a __u32 key in network order.
func v4Key(a netip.Addr) uint32 {
	b := a.As4()
	return binary.LittleEndian.Uint32(b[:])
}
