package daemon

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
)

// links reads what the tables need of the interfaces: MACs, MTUs, and the
// backend side's addresses (the sources of ICMP errors to backends).
func (d *Daemon) links() links {
	l := d.readLinks()
	if !l.downAddr.IsValid() {
		d.log.Warn("the backend interface has no IPv4 address: ICMP errors to backends will have none", zap.String("if", d.down.Name))
	}
	return l
}

func (d *Daemon) readLinks() links {
	l := links{upMAC: macOf(d.up.MAC), downMAC: macOf(d.down.MAC), upMTU: d.up.MTU, downMTU: d.down.MTU,
		mssClamp: d.opts.MSSClamp}
	addrs, err := netlink.Addrs(d.down.Index)
	if err != nil {
		d.log.Warn("read the backend interface's addresses", zap.Error(err))
	}
	l.downAddr, l.downAddr6 = sourceAddrs(addrs)
	return l
}

// followLinks re-reads the interfaces' MTUs and the backend side's
// addresses, and re-plans when they changed: a link whose MTU went down
// under a daemon that still forwarded for the old one dropped every
// larger frame (AF_XDP does not send a frame over the MTU), silently.
func (d *Daemon) followLinks() {
	ifcs := []*netlink.Interface{&d.up}
	if !d.oneArm {
		ifcs = append(ifcs, &d.down)
	}
	for _, ifc := range ifcs {
		if now, err := netlink.InterfaceByName(ifc.Name); err == nil && now.MTU != ifc.MTU {
			d.log.Info("link MTU changed", zap.String("if", ifc.Name), zap.Int("from", ifc.MTU), zap.Int("to", now.MTU))
			ifc.MTU = now.MTU
		}
	}
	if d.oneArm {
		d.down = d.up
	}
	if l := d.readLinks(); d.core.setLinks(l) {
		if err := d.core.refresh(); err != nil {
			d.log.Warn("apply link changes", zap.Error(err))
		}
	}
}

// sourceAddrs picks an interface's first IPv4 address and its first IPv6
// address, preferring one that is not link-local (a routed backend cannot
// answer fe80::).
func sourceAddrs(addrs []netip.Addr) (v4, v6 netip.Addr) {
	for _, a := range addrs {
		switch {
		case a.Is4() && !v4.IsValid():
			v4 = a
		case a.Is6() && (!v6.IsValid() || v6.IsLinkLocalUnicast() && !a.IsLinkLocalUnicast()):
			v6 = a
		}
	}
	return v4, v6
}

// reservedPortsFile is net.ipv4.ip_local_reserved_ports (per network namespace).
const reservedPortsFile = "/proc/sys/net/ipv4/ip_local_reserved_ports"

// setupSNAT hands the SNAT addresses and ports to the dataplane and the XDP
// program. A SNAT address that is the host's own (as IPVS full-NAT local
// addresses are) shares its ports with the host's connections: the range is
// reserved from the kernel's ephemeral ports while the daemon runs, so a
// health probe from that address never gets a port a reply would be
// steered for.
func (d *Daemon) setupSNAT() error {
	if len(d.opts.SNATAddrs) == 0 {
		return nil
	}
	local := false
	for _, a := range d.opts.SNATAddrs {
		local = local || d.isLocal(a)
	}
	r, err := snatRange(d.opts.SNATPorts, local, ephemeralPorts())
	if err != nil {
		return err
	}
	d.opts.SNATPorts = r
	lo, hi := r[0], r[1]
	d.eng.UseSNAT(d.opts.SNATAddrs, lo, hi)
	if err := d.prog.SetSNAT(d.opts.SNATAddrs, lo, hi); err != nil {
		return err
	}
	if !local {
		return nil
	}
	restore, err := reservePorts(lo, hi)
	if err != nil {
		return fmt.Errorf("reserve the SNAT ports %d-%d from the kernel's ephemeral ports: %w", lo, hi, err)
	}
	d.unreserve = restore
	d.log.Info("SNAT ports reserved from the kernel's ephemeral ports while running",
		zap.String("ip_local_reserved_ports", fmt.Sprintf("%d-%d", lo, hi)), zap.Any("snat", d.opts.SNATAddrs))
	return nil
}

// ephemeralRangeFile is net.ipv4.ip_local_port_range (per network
// namespace; IPv6 uses it too).
const ephemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// ephemeralPorts is the kernel's ephemeral port range (Linux's default
// when it cannot be read).
func ephemeralPorts() [2]uint16 {
	b, err := os.ReadFile(ephemeralRangeFile)
	if err == nil {
		var lo, hi uint16
		if _, err := fmt.Sscan(string(b), &lo, &hi); err == nil && lo <= hi {
			return [2]uint16{lo, hi}
		}
	}
	return [2]uint16{32768, 60999}
}

// snatRange is the full-NAT port range: the one given, or (given none)
// DefaultSNATPorts, except that a SNAT address of the host's own has its
// ports reserved from the kernel's ephemeral range, which must keep some:
// with every ephemeral port reserved the host's own connections, the
// daemon's health probes included, fail ("cannot assign requested
// address"). Given none, such an address gets the larger span outside the
// ephemeral range; a given range that covers it all is refused.
func snatRange(given [2]uint16, local bool, eph [2]uint16) ([2]uint16, error) {
	covers := func(r [2]uint16) bool { return r[0] <= eph[0] && r[1] >= eph[1] }
	if given != ([2]uint16{}) {
		if local && covers(given) {
			return given, fmt.Errorf("--snat-ports %d-%d reserves every ephemeral port of this host (ip_local_port_range %d-%d) "+
				"for a SNAT address that is the host's own: its own connections, health probes included, could not get a port; "+
				"give a range that leaves some (e.g. --snat-ports %d-65535), or omit it", given[0], given[1], eph[0], eph[1], uint32(eph[1])+1)
		}
		return given, nil
	}
	if !local || !covers(DefaultSNATPorts) {
		return DefaultSNATPorts, nil
	}
	below := [2]uint16{DefaultSNATPorts[0], eph[0] - 1}
	above := [2]uint16{eph[1] + 1, DefaultSNATPorts[1]}
	r := above
	if eph[1] == 65535 || int(below[1])-int(below[0]) >= int(above[1])-int(above[0]) {
		r = below
	}
	if eph[0] <= DefaultSNATPorts[0] && r == below || snatSpan(r) != nil {
		return given, fmt.Errorf("the kernel's ephemeral ports (ip_local_port_range %d-%d) leave too few full-NAT ports for a "+
			"SNAT address of the host's own: give --snat-ports, or narrow ip_local_port_range", eph[0], eph[1])
	}
	return r, nil
}

// snatSpan checks that a full-NAT range has a port in every conntrack
// shard (a flow's SNAT port must be in its client's shard): with fewer,
// the clients of the shards left out would be refused while ports were
// free.
func snatSpan(r [2]uint16) error {
	if conntrack.CoversShards(r[0], r[1]) {
		return nil
	}
	return fmt.Errorf("--snat-ports %d-%d: a full-NAT range must hold %d consecutive ports starting at a multiple of %d "+
		"(e.g. 40000-40063; any range of %d ports does), so that every client can be given one",
		r[0], r[1], conntrack.ShardSpan, conntrack.ShardSpan, 2*conntrack.ShardSpan-1)
}

// reservePorts adds lo-hi to ip_local_reserved_ports and returns what puts
// the previous value back.
func reservePorts(lo, hi uint16) (func() error, error) {
	old, err := os.ReadFile(reservedPortsFile)
	if err != nil {
		return nil, err
	}
	prev := strings.TrimSpace(string(old))
	next := fmt.Sprintf("%d-%d", lo, hi)
	if prev != "" {
		next = prev + "," + next
	}
	if err := os.WriteFile(reservedPortsFile, []byte(next), 0o644); err != nil {
		return nil, err
	}
	return func() error {
		if err := os.WriteFile(reservedPortsFile, []byte(prev+"\n"), 0o644); err != nil {
			return fmt.Errorf("restore %s: %w", reservedPortsFile, err)
		}
		return nil
	}, nil
}
