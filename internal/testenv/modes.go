package testenv

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// RouterAddr is the lab router's address on the backend network.
const RouterAddr = "10.0.2.254"

// addRouter puts a forwarding namespace on both networks.
func (l *Lab) addRouter(c Cleaner, prefix, upBridge string) error {
	var err error
	if l.Router, err = NewNS(c, prefix+"-rt"); err != nil {
		return err
	}
	if err := l.portOnBridge(l.Router, "c0", upBridge, "prtc", 0); err != nil {
		return err
	}
	if err := l.portOnBridge(l.Router, "b0", "br0", "prtb", 0); err != nil {
		return err
	}
	if err := l.Router.ipAll([][]string{{"addr", "add", "10.0.1.254/24", "dev", "c0"},
		{"addr", "add", RouterAddr + "/24", "dev", "b0"}, {"link", "set", "c0", "up"}, {"link", "set", "b0", "up"}}); err != nil {
		return err
	}
	return forwarding(l.Router)
}

// forwarding makes ns a router that also forwards DSR replies, whose source
// (the VIP) it routes elsewhere: no reverse-path filter.
func forwarding(ns *NS) error {
	for _, kv := range []string{"net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"} {
		if _, err := ns.Exec("sysctl", "-qw", kv); err != nil {
			return err
		}
	}
	return nil
}

// PrepareDSR makes the backends DSR backends: the VIP on their loopback,
// never answering ARP for it (arp_ignore=1, arp_announce=2, as for IPVS
// DR), and their default route via the lab router instead of the load
// balancer, so their replies bypass it. With bin, each backend also runs
// `scmlb-xsk decap` on eth0 (dsr-ipip) until cleanup.
func (l *Lab) PrepareDSR(c Cleaner, bin string) error {
	if l.Router == nil {
		return fmt.Errorf("DSR backends need LabConfig.Router")
	}
	for _, b := range l.Backends {
		if err := b.ipAll([][]string{{"addr", "add", l.VIP.String() + "/32", "dev", "lo"},
			{"route", "replace", "default", "via", RouterAddr}}); err != nil {
			return err
		}
		for _, kv := range []string{"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"} {
			if _, err := b.Exec("sysctl", "-qw", kv); err != nil {
				return err
			}
		}
		if bin == "" {
			continue
		}
		p, err := StartProcess(c, b, filepath.Base(bin)+" decap", bin, "decap", "--if", "eth0")
		if err != nil {
			return err
		}
		if err := WaitFor(10*time.Second, func() error {
			if done, err := p.Exited(); done {
				return fmt.Errorf("decap exited: %v: %s", err, p.Output())
			}
			if !strings.Contains(p.Output(), "decapsulating") {
				return fmt.Errorf("decap not attached yet")
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// PrepareFullNAT gives the load balancer's backend interface the SNAT
// address and takes the backends' default route away: they cannot reach
// the clients except through the load balancer's full NAT.
func (l *Lab) PrepareFullNAT(snat netip.Addr) error {
	add, del := []string{"addr", "add", snat.String() + "/24", "dev", l.BackendIf}, []string{"route", "del", "default"}
	if snat.Is6() {
		add, del = []string{"addr", "add", snat.String() + "/64", "dev", l.BackendIf, "nodad"}, []string{"-6", "route", "del", "default"}
	}
	if _, err := l.LB.IP(add...); err != nil {
		return err
	}
	for _, b := range l.Backends {
		if _, err := b.IP(del...); err != nil {
			return err
		}
	}
	return nil
}
