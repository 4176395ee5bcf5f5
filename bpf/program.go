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
	objs  xdpObjects
	links map[int]link.Link // by ifindex
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

// RegisterSocket makes packets steered on RX queue `queue` go to the AF_XDP socket fd.
func (p *Program) RegisterSocket(queue, fd int) error {
	if err := p.objs.Xsks.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("register xsk fd %d for queue %d: %w", fd, queue, err)
	}
	return nil
}

// UnregisterSocket stops steering on RX queue `queue`; its traffic is passed to the kernel.
func (p *Program) UnregisterSocket(queue int) error {
	if err := p.objs.Xsks.Delete(uint32(queue)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unregister xsk for queue %d: %w", queue, err)
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
	var k xdpEndpoint
	var v uint32
	var stale []xdpEndpoint
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !keep[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate %s: %w", m, err)
	}
	for _, k := range stale {
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
