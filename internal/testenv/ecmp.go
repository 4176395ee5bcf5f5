package testenv

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Router daemons an ECMPLab can run.
const (
	Bird = "bird" // bird2
	FRR  = "frr"  // FRR's zebra and bgpd
)

// ECMPConfig sizes an ECMPLab.
type ECMPConfig struct {
	LBs, Backends int
	// Router is Bird or FRR ("": Bird).
	Router string
	// HoldSeconds is the router's BGP hold time (0: 9); the session runs
	// with the smaller of it and what the load balancer offers.
	HoldSeconds int
	// Dir holds bird's configuration and socket (FRR's go to a directory
	// of their own that the frr user can reach).
	Dir string
}

// ECMPLab is the scale-out lab: a router running bird2 spreads the VIP
// over the load balancers that announce it over BGP.
//
//	client 10.0.1.2 -- 10.0.1.1 rt 10.0.5.1 (AS 65000) -- brU -- lb i up0 10.0.5.(11+i) (AS 65001)
//	lb i down0 10.0.2.(1+i) -- br0 -- backend i 10.0.2.(11+i); rt b0 10.0.2.254
//
// The router hashes flows over the next hops by their 5-tuple
// (fib_multipath_hash_policy=1) and is the DSR backends' way back.
// The embedded Lab is the view from the first load balancer; On(i) gives
// the view from another.
type ECMPLab struct {
	Lab
	LBs        []*NS
	LBAddrs    []netip.Addr // up0: BGP session and next-hop addresses
	RouterPeer netip.Addr   // the router on brU
	RouterASN  uint32
	LBASN      uint32
	// Daemons are the router's processes (bird; or zebra and bgpd).
	Daemons []*Process
	router  string
	ctl     string // bird's control socket, or FRR's vty directory
}

// NewECMPLab builds the topology and starts bird in the router namespace;
// everything is removed on cleanup.
func NewECMPLab(c Cleaner, cfg ECMPConfig) (*ECMPLab, error) {
	p := UniquePrefix()
	l := &ECMPLab{Lab: Lab{VIP: netip.MustParseAddr("10.0.100.1"), UpstreamIf: "up0", BackendIf: "down0",
		ClientAddr: netip.MustParseAddr("10.0.1.2")}, RouterPeer: netip.MustParseAddr("10.0.5.1"),
		RouterASN: 65000, LBASN: 65001}
	l.ClientAddrs = []netip.Addr{l.ClientAddr}
	ns := &namespaces{c: c, prefix: p}
	mk := ns.make
	l.Client, l.Switch, l.Router = mk("c1"), mk("sw"), mk("rt")
	for i := 0; i < cfg.LBs; i++ {
		l.LBs = append(l.LBs, mk(fmt.Sprintf("lb%d", i+1)))
		l.LBAddrs = append(l.LBAddrs, netip.MustParseAddr(fmt.Sprintf("10.0.5.%d", 11+i)))
	}
	l.makeBackends(ns, cfg.Backends)
	if err := ns.err; err != nil {
		return nil, err
	}
	l.Clients, l.LB = []*NS{l.Client}, l.LBs[0]
	steps := []func() error{
		func() error {
			return l.Switch.ipAll([][]string{{"link", "add", "br0", "type", "bridge"}, {"link", "set", "br0", "up"},
				{"link", "add", "brU", "type", "bridge"}, {"link", "set", "brU", "up"}})
		},
		func() error { return l.clientBehind(l.Router) },
		func() error { return l.portOnBridge(l.Router, "u0", "brU", "prtu", 0) },
		func() error { return l.portOnBridge(l.Router, "b0", "br0", "prtb", 0) },
		func() error {
			return l.Router.ipAll([][]string{{"addr", "add", "10.0.1.1/24", "dev", "c0"}, {"addr", "add", "10.0.5.1/24", "dev", "u0"},
				{"addr", "add", RouterAddr + "/24", "dev", "b0"}, {"link", "set", "c0", "up"}, {"link", "set", "u0", "up"},
				{"link", "set", "b0", "up"}})
		},
		func() error { return forwarding(l.Router) },
		func() error {
			_, err := l.Router.Exec("sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1")
			return err
		},
	}
	for i, lb := range l.LBs {
		steps = append(steps,
			func() error { return l.portOnBridge(lb, "up0", "brU", fmt.Sprintf("plbu%d", i+1), 0) },
			func() error { return l.portOnBridge(lb, "down0", "br0", fmt.Sprintf("plbd%d", i+1), 0) },
			func() error {
				return lb.ipAll([][]string{{"addr", "add", l.LBAddrs[i].String() + "/24", "dev", "up0"},
					{"addr", "add", fmt.Sprintf("10.0.2.%d/24", 1+i), "dev", "down0"},
					{"link", "set", "up0", "up"}, {"link", "set", "down0", "up"}, {"route", "add", "default", "via", "10.0.5.1"}})
			})
	}
	for i, b := range l.Backends {
		steps = append(steps, func() error {
			return l.host(b, "br0", fmt.Sprintf("pb%d", i+1), l.BackendAddrs[i], RouterAddr)
		})
	}
	l.router = cmp.Or(cfg.Router, Bird)
	hold := cmp.Or(cfg.HoldSeconds, 9)
	switch l.router {
	case Bird:
		steps = append(steps, func() error { return l.startBird(c, cfg.Dir, hold) })
	case FRR:
		steps = append(steps, func() error { return l.startFRR(c, hold, p) })
	default:
		return nil, fmt.Errorf("router %q: want %s or %s", cfg.Router, Bird, FRR)
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// On is the lab as seen from load balancer i (LB and its interfaces).
func (l *ECMPLab) On(i int) *Lab {
	v := l.Lab
	v.LB = l.LBs[i]
	return &v
}

// birdConf peers with every load balancer (passive: they connect), learns
// the VIPs and puts them in the kernel with all equal paths merged.
func (l *ECMPLab) birdConf(hold int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `router id %s;
protocol device { scan time 1; }
protocol kernel {
	ipv4 { import none; export all; };
	merge paths on;
}
`, l.RouterPeer)
	for i, a := range l.LBAddrs {
		fmt.Fprintf(&b, `protocol bgp lb%d {
	local %s as %d;
	neighbor %s as %d;
	passive on;
	hold time %d;
	keepalive time %d;
	error wait time 1, 2;
	ipv4 { import all; export none; };
}
`, i+1, l.RouterPeer, l.RouterASN, a, l.LBASN, hold, max(hold/3, 1))
	}
	return b.String()
}

func (l *ECMPLab) startBird(c Cleaner, dir string, hold int) error {
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(l.birdConf(hold)), 0o600); err != nil {
		return err
	}
	l.ctl = filepath.Join(dir, "bird.ctl")
	p, err := StartProcess(c, l.Router, "bird", "bird", "-f", "-c", conf, "-s", l.ctl, "-P", filepath.Join(dir, "bird.pid"))
	if err != nil {
		return err
	}
	l.Daemons = []*Process{p}
	return l.waitRouter(func() error { _, err := l.RouterCLI("show", "status"); return err })
}

// frrConf is docs/scaleout.md's FRR configuration for the lab.
func (l *ECMPLab) frrConf(hold int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `frr defaults datacenter
hostname rt
log stdout informational
!
router bgp %d
 bgp router-id %s
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
 neighbor LB peer-group
 neighbor LB remote-as %d
 neighbor LB passive
 neighbor LB timers %d %d
`, l.RouterASN, l.RouterPeer, l.LBASN, max(hold/3, 1), hold)
	for _, a := range l.LBAddrs {
		fmt.Fprintf(&b, " neighbor %s peer-group LB\n", a)
	}
	b.WriteString(" address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n!\n")
	return b.String()
}

// startFRR runs zebra and bgpd in the router namespace, as the frr user
// (FRR refuses to run as a user outside its vty group), with every path
// in dir and a pathspace of their own.
func (l *ECMPLab) startFRR(c Cleaner, hold int, pathspace string) error {
	// Not under dir: a test's temporary directories are private to root,
	// and frr must reach its files.
	var err error
	if l.ctl, err = os.MkdirTemp("", pathspace+"-frr"); err != nil {
		return err
	}
	// FRR also makes /var/run/frr/PATHSPACE (-N).
	c.Cleanup(func() { os.RemoveAll(l.ctl); os.RemoveAll(filepath.Join("/var/run/frr", pathspace)) })
	if err := os.Chmod(l.ctl, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(l.ctl, "frr.conf")
	for _, f := range []struct{ name, body string }{{"frr.conf", l.frrConf(hold)}, {"vtysh.conf", ""}} {
		if err := os.WriteFile(filepath.Join(l.ctl, f.name), []byte(f.body), 0o644); err != nil {
			return err
		}
	}
	if _, err := run("chown", "-R", "frr:frr", l.ctl); err != nil {
		return err
	}
	for _, d := range []string{"zebra", "bgpd"} {
		p, err := StartProcess(c, l.Router, d, "/usr/lib/frr/"+d, "-N", pathspace, "-f", conf,
			"-i", filepath.Join(l.ctl, d+".pid"), "-z", filepath.Join(l.ctl, "zserv.api"), "--vty_socket", l.ctl,
			"-u", "frr", "-g", "frr")
		if err != nil {
			return err
		}
		l.Daemons = append(l.Daemons, p)
		if err := l.waitRouter(func() error {
			_, err := os.Stat(filepath.Join(l.ctl, d+".vty"))
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// waitRouter waits until ready succeeds, failing early if a daemon exits.
func (l *ECMPLab) waitRouter(ready func() error) error {
	return WaitFor(10*time.Second, func() error {
		for _, p := range l.Daemons {
			if done, err := p.Exited(); done {
				return fmt.Errorf("%s exited: %v: %s", l.router, err, p.Output())
			}
		}
		return ready()
	})
}

// RouterCLI runs a command of the router daemon's CLI (birdc; or vtysh,
// whose command is the arguments joined).
func (l *ECMPLab) RouterCLI(args ...string) (string, error) {
	if l.router == FRR {
		return l.Router.Exec("vtysh", "--vty_socket", l.ctl, "-c", strings.Join(args, " "))
	}
	return l.Router.Exec("birdc", append([]string{"-s", l.ctl}, args...)...)
}

// RouterOutput is what the router daemons logged.
func (l *ECMPLab) RouterOutput() string {
	var b strings.Builder
	for _, p := range l.Daemons {
		b.WriteString(p.Output())
	}
	return b.String()
}

// NextHops are the router's kernel next hops for the VIP, sorted (none
// when it has no route).
func (l *ECMPLab) NextHops() ([]netip.Addr, error) {
	out, err := l.Router.IP("-j", "route", "show", l.VIP.String()+"/32")
	if err != nil {
		return nil, err
	}
	var routes []struct {
		Gateway  string `json:"gateway"`
		Protocol string `json:"protocol"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		return nil, fmt.Errorf("ip -j route: %w: %s", err, out)
	}
	var hops []netip.Addr
	add := func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("next hop %q: %w", s, err)
		}
		hops = append(hops, a)
		return nil
	}
	for _, r := range routes {
		if want := map[string]string{Bird: "bird", FRR: "bgp"}[l.router]; r.Protocol != want {
			return nil, fmt.Errorf("route to the VIP not from bird: %s", out)
		}
		if r.Gateway != "" {
			if err := add(r.Gateway); err != nil {
				return nil, err
			}
		}
		for _, n := range r.Nexthops {
			if err := add(n.Gateway); err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(hops, netip.Addr.Compare)
	return hops, nil
}

// WaitNextHops waits until the router's next hops for the VIP are want,
// and returns how long that took.
func (l *ECMPLab) WaitNextHops(want []netip.Addr, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	var last []netip.Addr
	err := WaitFor(timeout, func() error {
		hops, err := l.NextHops()
		if err != nil {
			return err
		}
		last = hops
		if !slices.Equal(hops, want) {
			return fmt.Errorf("next hops %v", hops)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("router next hops for %s: %v, want %v within %s", l.VIP, last, want, timeout)
	}
	return time.Since(start), nil
}

// BGPRoutes is the router daemon's own view of the VIP's BGP routes.
func (l *ECMPLab) BGPRoutes() (string, error) {
	if l.router == FRR {
		return l.RouterCLI("show", "ip", "bgp", l.VIP.String()+"/32")
	}
	return l.RouterCLI("show", "route", "for", l.VIP.String(), "all")
}
