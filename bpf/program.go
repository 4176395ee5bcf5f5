package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
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
	Addr  netip.Addr // IPv4 or IPv6
	Port  uint16
	Proto ipproto.Proto // TCP or UDP
}

func (e Endpoint) key() (xdpEndpoint, error) {
	a, err := addrKey(e.Addr)
	if err != nil {
		return xdpEndpoint{}, err
	}
	return xdpEndpoint{Addr: a, Port: e.Port<<8 | e.Port>>8, Proto: uint8(e.Proto)}, nil
}

// addrKey is an address as the maps hold it: 16 bytes in network order,
// IPv4 mapped (::ffff:a.b.c.d). The C side compares raw packet bytes, so
// each word keeps the packet's byte order.
func addrKey(a netip.Addr) (xdpAddr, error) {
	if !a.IsValid() || a.Is4In6() {
		return xdpAddr{}, fmt.Errorf("address %s: want IPv4 or IPv6 (not IPv4-mapped)", a)
	}
	b := a.As16()
	var k xdpAddr
	for i := range k.W {
		k.W[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return k, nil
}

// keyAddr is addrKey's inverse.
func keyAddr(w [4]uint32) netip.Addr {
	var b [16]byte
	for i := range w {
		binary.LittleEndian.PutUint32(b[4*i:], w[i])
	}
	return netip.AddrFrom16(b).Unmap()
}

// Program is the loaded XDP program and its maps, attached to zero or more
// interfaces. It is not safe for concurrent writers: the daemon's apply path
// is its one writer.
type Program struct {
	objs         xdpObjects
	links        map[int]link.Link // by ifindex
	held         map[int]link.Link // adopted from a held predecessor, until Attach
	fwActive     map[uint32]bool   // firewall slots in use
	dosActive    map[uint32]xdpDosPolicy
	services     *mirror[xdpEndpoint, uint32]
	backends     *mirror[xdpEndpoint, uint32]
	backendHosts *mirror[xdpAddr, xdpBackendHost]
	localAddrs   *mirror[xdpAddr, uint8]
	vips         *mirror[xdpAddr, uint8]
	fwPrefixes   *mirror[xdpLpmV4Key, xdpRuleSet]
	fwPrefixes6  *mirror[xdpLpmV6Key, xdpRuleSet]
}

// Load checks the object against the limits, loads the program and creates
// its maps in the kernel.
func Load() (*Program, error) {
	spec, err := Spec()
	if err != nil {
		return nil, err
	}
	if err := CheckSpec(spec); err != nil {
		return nil, err
	}
	p := &Program{links: map[int]link.Link{}}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		return nil, loadError("xdp", err)
	}
	p.services = newMirror[xdpEndpoint, uint32](p.objs.Services)
	p.backends = newMirror[xdpEndpoint, uint32](p.objs.Backends)
	p.backendHosts = newMirror[xdpAddr, xdpBackendHost](p.objs.BackendHosts)
	p.localAddrs = newMirror[xdpAddr, uint8](p.objs.LocalAddrs)
	p.vips = newMirror[xdpAddr, uint8](p.objs.Vips)
	p.fwPrefixes = newMirror[xdpLpmV4Key, xdpRuleSet](p.objs.FwPrefixes)
	p.fwPrefixes6 = newMirror[xdpLpmV6Key, xdpRuleSet](p.objs.FwPrefixes6)
	return p, nil
}

// Attach attaches the program to ifindex through a bpf_link, so the kernel
// detaches it by itself if this process dies without calling Close.
func (p *Program) Attach(ifindex int, mode Mode) error {
	if _, ok := p.links[ifindex]; ok {
		return nil
	}
	if l, ok := p.held[ifindex]; ok {
		// The held program is replaced in place, with no moment without
		// one; the link is ours now.
		if err := l.Update(p.objs.XdpSteer); err != nil {
			return fmt.Errorf("replace the held xdp program on ifindex %d: %w", ifindex, err)
		}
		delete(p.held, ifindex)
		p.links[ifindex] = l
		return nil
	}
	l, err := attachXDP(p.objs.XdpSteer, ifindex, mode)
	if err != nil {
		return err
	}
	p.links[ifindex] = l
	return nil
}

// attachXDP attaches prog to ifindex through a bpf_link.
func attachXDP(prog *ebpf.Program, ifindex int, mode Mode) (link.Link, error) {
	flags := link.XDPDriverMode
	if mode == Generic {
		flags = link.XDPGenericMode
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
	if err != nil {
		return nil, fmt.Errorf("attach %s (%s) to ifindex %d: %w", prog, mode, ifindex, err)
	}
	return l, nil
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

// SetServices replaces the set of steered service endpoints (value: service
// id), writing only what changed since the last call.
func (p *Program) SetServices(eps map[Endpoint]uint32) error {
	return syncEndpoints(p.services, eps)
}

// SetBackends replaces the set of backend endpoints whose replies are steered.
func (p *Program) SetBackends(eps map[Endpoint]uint32) error {
	return syncEndpoints(p.backends, eps)
}

func syncEndpoints(mr *mirror[xdpEndpoint, uint32], eps map[Endpoint]uint32) error {
	want := make(map[xdpEndpoint]uint32, len(eps))
	for ep, id := range eps {
		k, err := ep.key()
		if err != nil {
			return err
		}
		want[k] = id
	}
	return mr.sync(want)
}

// SetBackendHosts replaces the backend addresses and their next-hop MACs
// whose packets on the backend interface skip the filters.
func (p *Program) SetBackendHosts(hosts map[netip.Addr][6]byte) error {
	want := make(map[xdpAddr]xdpBackendHost, len(hosts))
	for a, mac := range hosts {
		k, err := addrKey(a)
		if err != nil {
			return err
		}
		want[k] = xdpBackendHost{Mac: mac}
	}
	return p.backendHosts.sync(want)
}

// SetVIPs replaces the VIP addresses: echo requests to them, and ICMP errors
// about their packets, are steered to the workers.
func (p *Program) SetVIPs(vips []netip.Addr) error {
	want, err := addrSet(vips)
	if err != nil {
		return err
	}
	return p.vips.sync(want)
}

// SetSNAT sets the full-NAT source addresses and port range (inclusive):
// backend replies to those addresses and ports are steered even when the
// address is the host's own. Call it once, before attaching.
func (p *Program) SetSNAT(addrs []netip.Addr, lo, hi uint16) error {
	if len(addrs) > MaxSNATAddrs {
		return fmt.Errorf("%d SNAT addresses: the XDP program holds at most %d (MAX_SNAT_ADDRS)", len(addrs), MaxSNATAddrs)
	}
	want, err := addrSet(addrs)
	if err != nil {
		return err
	}
	for k := range want {
		if err := p.objs.SnatAddrs.Put(k, uint8(1)); err != nil {
			return fmt.Errorf("put SNAT address: %w", err)
		}
	}
	if err := p.objs.SnatPortLo.Set(uint32(lo)); err != nil {
		return fmt.Errorf("set snat_port_lo: %w", err)
	}
	if err := p.objs.SnatPortHi.Set(uint32(hi)); err != nil {
		return fmt.Errorf("set snat_port_hi: %w", err)
	}
	return nil
}

func addrSet(addrs []netip.Addr) (map[xdpAddr]uint8, error) {
	want := make(map[xdpAddr]uint8, len(addrs))
	for _, a := range addrs {
		k, err := addrKey(a)
		if err != nil {
			return nil, err
		}
		want[k] = 1
	}
	return want, nil
}

// SetBackendInterface tells the program which interface faces the backends
// (in one-arm mode, the only one).
func (p *Program) SetBackendInterface(ifindex int) error {
	if err := p.objs.BackendIfindex.Set(uint32(ifindex)); err != nil {
		return fmt.Errorf("set backend_ifindex: %w", err)
	}
	return nil
}

// Close detaches from every interface and releases the program and maps.
func (p *Program) Close() error {
	var errs []error
	for ifindex := range p.links {
		errs = append(errs, p.Detach(ifindex))
	}
	for _, l := range p.held { // adopted, never attached: the holder still holds it
		errs = append(errs, l.Close())
	}
	errs = append(errs, p.objs.Close())
	return errors.Join(errs...)
}

// SetLocalAddrs replaces the host's own addresses (both families), to
// which packets are never steered.
func (p *Program) SetLocalAddrs(addrs []netip.Addr) error {
	want := map[xdpAddr]uint8{}
	for _, a := range addrs {
		if k, err := addrKey(a.Unmap()); err == nil {
			want[k] = 1
		}
	}
	if len(want) > MaxLocalAddrs {
		return fmt.Errorf("the host has %d addresses; the XDP program holds at most %d (MAX_LOCAL_ADDRS)", len(want), MaxLocalAddrs)
	}
	return p.localAddrs.sync(want)
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

// loadError wraps a program load failure; a verifier error is printed in
// full (its log says which instruction was refused).
func loadError(what string, err error) error {
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) {
		return fmt.Errorf("load %s program: %+v", what, verr)
	}
	return fmt.Errorf("load %s program: %w", what, err)
}

// xdpMd is struct xdp_md, the context BPF_PROG_TEST_RUN takes.
type xdpMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// TestRun runs the loaded program, with its live maps, on frame as if it
// arrived on ifindex, queue 0 (BPF_PROG_TEST_RUN), and returns the XDP
// action. Nothing is transmitted or redirected, but the program's side
// effects happen: the frame is counted, and counts towards its source's
// DoS windows.
func (p *Program) TestRun(frame []byte, ifindex int) (uint32, error) {
	ret, err := p.objs.XdpSteer.Run(&ebpf.RunOptions{Data: frame, Context: xdpMd{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}})
	if err != nil {
		return 0, fmt.Errorf("test run of the xdp program: %w", err)
	}
	return ret, nil
}

// Attached is the number of interfaces the program is attached to.
func (p *Program) Attached() int { return len(p.links) }
