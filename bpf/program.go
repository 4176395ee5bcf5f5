package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Mode is how the XDP program is attached to an interface.
type Mode int

const (
	// Native runs the program in the driver (veth, mlx5, i40e, ...).
	Native Mode = iota
	// Generic runs it after the skb is built; slower, works on every interface.
	Generic
)

func (m Mode) String() string {
	if m == Generic {
		return "generic"
	}
	return "native"
}

// ParseMode reads "native" or "generic".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "native", "":
		return Native, nil
	case "generic":
		return Generic, nil
	}
	return 0, fmt.Errorf("xdp mode %q: want native or generic", s)
}

// Endpoint is an L4 address: a service VIP:port or a backend ip:port.
type Endpoint struct {
	Addr  netip.Addr // IPv4
	Port  uint16
	Proto uint8 // 6 (TCP) or 17 (UDP)
}

func (e Endpoint) key() (xdpEndpoint, error) {
	if !e.Addr.Is4() {
		return xdpEndpoint{}, fmt.Errorf("endpoint %s: only IPv4 is supported", e.Addr)
	}
	a := e.Addr.As4()
	// The C side compares raw packet bytes, so store both in network order.
	return xdpEndpoint{
		Addr:  binary.LittleEndian.Uint32(a[:]),
		Port:  e.Port<<8 | e.Port>>8,
		Proto: e.Proto,
	}, nil
}

// Program is the loaded XDP program and its maps, attached to zero or more interfaces.
type Program struct {
	objs      xdpObjects
	links     map[int]link.Link // by ifindex
	fwActive  map[uint32]bool   // firewall slots in use
	dosActive map[uint32]xdpDosPolicy
}

// Load loads the program and creates its maps in the kernel.
func Load() (*Program, error) {
	p := &Program{links: map[int]link.Link{}}
	if err := loadXdpObjects(&p.objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load xdp program: %+v", verr)
		}
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	return p, nil
}

// Attach attaches the program to ifindex through a bpf_link, so the kernel
// detaches it by itself if this process dies without calling Close.
func (p *Program) Attach(ifindex int, mode Mode) error {
	if _, ok := p.links[ifindex]; ok {
		return nil
	}
	flags := link.XDPDriverMode
	if mode == Generic {
		flags = link.XDPGenericMode
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: p.objs.XdpSteer, Interface: ifindex, Flags: flags})
	if err != nil {
		return fmt.Errorf("attach xdp (%s) to ifindex %d: %w", mode, ifindex, err)
	}
	p.links[ifindex] = l
	return nil
}

// Detach removes the program from ifindex.
func (p *Program) Detach(ifindex int) error {
	l, ok := p.links[ifindex]
	if !ok {
		return nil
	}
	delete(p.links, ifindex)
	if err := l.Close(); err != nil {
		return fmt.Errorf("detach xdp from ifindex %d: %w", ifindex, err)
	}
	return nil
}

// XDP returns the program itself, for BPF_PROG_TEST_RUN.
func (p *Program) XDP() *ebpf.Program { return p.objs.XdpSteer }

// Limits compiled into the program (include/consts.h).
const (
	MaxQueues = 64
	MaxIfaces = 4
)

// SetInterfaceSlot gives ifindex its own range of XSKMAP keys. Interfaces
// without a slot use slot 0.
func (p *Program) SetInterfaceSlot(ifindex, slot int) error {
	if slot < 0 || slot >= MaxIfaces {
		return fmt.Errorf("interface slot %d out of range [0,%d)", slot, MaxIfaces)
	}
	if err := p.objs.IfSlots.Put(uint32(ifindex), uint32(slot)); err != nil {
		return fmt.Errorf("set slot %d for ifindex %d: %w", slot, ifindex, err)
	}
	return nil
}

func xskKey(slot, queue int) (uint32, error) {
	if slot < 0 || slot >= MaxIfaces || queue < 0 || queue >= MaxQueues {
		return 0, fmt.Errorf("xsk slot %d queue %d out of range (%d slots, %d queues)", slot, queue, MaxIfaces, MaxQueues)
	}
	return uint32(slot*MaxQueues + queue), nil
}

// RegisterSocket makes packets steered on RX queue `queue` of the interface
// in `slot` go to the AF_XDP socket fd.
func (p *Program) RegisterSocket(slot, queue, fd int) error {
	k, err := xskKey(slot, queue)
	if err != nil {
		return err
	}
	if err := p.objs.Xsks.Put(k, uint32(fd)); err != nil {
		return fmt.Errorf("register xsk fd %d for slot %d queue %d: %w", fd, slot, queue, err)
	}
	return nil
}

// UnregisterSocket stops steering on that queue; its traffic is passed to the kernel.
func (p *Program) UnregisterSocket(slot, queue int) error {
	k, err := xskKey(slot, queue)
	if err != nil {
		return err
	}
	if err := p.objs.Xsks.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unregister xsk for slot %d queue %d: %w", slot, queue, err)
	}
	return nil
}

// SetServices replaces the set of steered service endpoints (value: service id).
func (p *Program) SetServices(eps map[Endpoint]uint32) error {
	return syncEndpoints(p.objs.Services, eps)
}

// SetBackends replaces the set of backend endpoints whose replies are steered.
func (p *Program) SetBackends(eps map[Endpoint]uint32) error {
	return syncEndpoints(p.objs.Backends, eps)
}

// syncEndpoints writes want into m, then deletes what is no longer wanted, so
// a reconfiguration never leaves a moment where a kept endpoint is missing.
func syncEndpoints(m *ebpf.Map, want map[Endpoint]uint32) error {
	keep := make(map[xdpEndpoint]bool, len(want))
	for ep, id := range want {
		k, err := ep.key()
		if err != nil {
			return err
		}
		if err := m.Put(k, id); err != nil {
			return fmt.Errorf("put %v in %s: %w", ep, m, err)
		}
		keep[k] = true
	}
	return deleteWhere[xdpEndpoint, uint32](m, func(k xdpEndpoint) bool { return !keep[k] })
}

// deleteWhere removes the keys of m for which drop is true. Keys are
// collected first: deleting while iterating a hash map can restart the walk.
func deleteWhere[K comparable, V any](m *ebpf.Map, drop func(K) bool) error {
	var k K
	var v V
	var doomed []K
	it := m.Iterate()
	for it.Next(&k, &v) {
		if drop(k) {
			doomed = append(doomed, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate %s: %w", m, err)
	}
	for _, k := range doomed {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete from %s: %w", m, err)
		}
	}
	return nil
}

// Close detaches from every interface and releases the program and maps.
func (p *Program) Close() error {
	var errs []error
	for ifindex := range p.links {
		errs = append(errs, p.Detach(ifindex))
	}
	errs = append(errs, p.objs.Close())
	return errors.Join(errs...)
}

// SetLocalAddrs replaces the host's own addresses, to which packets are
// never steered.
func (p *Program) SetLocalAddrs(addrs []netip.Addr) error {
	want := map[uint32]bool{}
	for _, a := range addrs {
		k, err := Endpoint{Addr: a}.key()
		if err != nil {
			continue // IPv6 addresses are not the XDP program's business
		}
		if err := p.objs.LocalAddrs.Put(k.Addr, uint8(1)); err != nil {
			return fmt.Errorf("put local address %s: %w", a, err)
		}
		want[k.Addr] = true
	}
	return deleteWhere[uint32, uint8](p.objs.LocalAddrs, func(k uint32) bool { return !want[k] })
}

// ProgramName is the kernel name of the XDP program, by which a stale
// attachment of an earlier run is recognised.
const ProgramName = "xdp_steer"

// IsOwnProgram reports whether the loaded program with this id is the
// scmlb-xsk XDP program (of this or an earlier run).
func IsOwnProgram(id uint32) (bool, error) {
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return false, fmt.Errorf("open program %d: %w", id, err)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return false, fmt.Errorf("program %d info: %w", id, err)
	}
	return info.Name == ProgramName && info.Type == ebpf.XDP, nil
}
