package daemon

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
)

// links reads what the tables need of the interfaces: MACs, MTUs, and the
// backend side's addresses (the sources of ICMP errors to backends).
func (d *Daemon) links() links {
	l := links{upMAC: macOf(d.up.MAC), downMAC: macOf(d.down.MAC), upMTU: d.up.MTU, downMTU: d.down.MTU,
		mssClamp: d.opts.MSSClamp}
	addrs, err := netlink.Addrs(d.down.Index)
	if err != nil {
		d.log.Warn("read the backend interface's addresses", zap.Error(err))
	}
	l.downAddr, l.downAddr6 = sourceAddrs(addrs)
	if !l.downAddr.IsValid() {
		d.log.Warn("the backend interface has no IPv4 address: ICMP errors to backends will have none", zap.String("if", d.down.Name))
	}
	return l
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
	lo, hi := d.opts.SNATPorts[0], d.opts.SNATPorts[1]
	d.eng.UseSNAT(d.opts.SNATAddrs, lo, hi)
	if err := d.prog.SetSNAT(d.opts.SNATAddrs, lo, hi); err != nil {
		return err
	}
	local := false
	for _, a := range d.opts.SNATAddrs {
		local = local || d.isLocal(a)
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
