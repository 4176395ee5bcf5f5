package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/control/daemon"
	"github.com/scmlb-xsk/scmlb-xsk/xsk"
)

var runCommand = &cli.Command{
	Name:  "run",
	Usage: "run the load balancer daemon (root)",
	Description: `Examples:
   scmlb-xsk run --upstream eth0 --backend-if eth1 --vip 10.0.100.1:80/tcp --backend 10.0.2.11 --backend 10.0.2.12
   scmlb-xsk run --upstream eth0 --service tcp/10.0.100.1:3307=10.0.2.11:3306,10.0.2.12:3306`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "upstream", Usage: "interface facing clients", Required: true},
		&cli.StringFlag{Name: "backend-if", Usage: "interface facing backends (default: --upstream, one-arm)"},
		&cli.StringSliceFlag{Name: "vip", Usage: "service IP:PORT[/tcp|udp]; served by every --backend"},
		&cli.StringSliceFlag{Name: "backend", Usage: "backend IP[:PORT][@WEIGHT] of every --vip (port defaults to the VIP's)"},
		&cli.StringSliceFlag{Name: "service", Usage: "PROTO/VIP:PORT=BACKEND[,BACKEND...], e.g. tcp/10.0.100.1:3307=10.0.2.11:3306"},
		&cli.StringFlag{Name: "xdp-mode", Value: "native", Usage: "native or generic"},
		&cli.IntFlag{Name: "queues", Usage: "RX queues to serve, one worker each (0: all)"},
		&cli.StringFlag{Name: "cpus", Usage: "pin worker i to the i-th CPU of this comma list, e.g. 2,3"},
		&cli.IntFlag{Name: "conntrack-size", Value: 1 << 20, Usage: "maximum tracked flows"},
		&cli.IntFlag{Name: "worker-flows", Value: daemon.AutoWorkerFlows, Usage: "flow directions each worker's express " +
			"records hold while the table holds 32768 flows or more, 272 bytes each (a NAT flow through one worker takes two; " +
			"-1: conntrack-size / workers; 0: none, such flows take the locked table path)"},
		&cli.IntFlag{Name: "frames", Value: xsk.DefaultOptions.NumFrames, Usage: "UMEM frames per socket"},
		&cli.DurationFlag{Name: "stats-interval", Usage: "log counters this often (0: at exit only)"},
		&cli.StringFlag{Name: "state-file", Value: "/var/lib/scmlb-xsk/state.json", Usage: "desired state, restored at start (\"\": keep in memory)"},
		&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus /metrics on this TCP address, e.g. 127.0.0.1:9110 (off by default)"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "config", Usage: "declarative state file (YAML, docs/examples/lb.yaml): applied at start and on SIGHUP; " +
			"the source of truth for services, backends, firewall rules and DoS policies"},
		&cli.DurationFlag{Name: "restart-hold", Usage: "on stop, keep the XDP programs attached for up to this long, dropping " +
			"what they would steer, until the next daemon takes them over: for restarts that keep flows (0: detach at once)"},
		&cli.StringSliceFlag{Name: "snat-addr", Usage: "full-NAT source address (repeat for more); fullnat services need one of their family"},
		&cli.StringFlag{Name: "snat-ports", Usage: "full-NAT source port range (default 1024-65535; for a SNAT address of the host's own, " +
			"the larger span outside ip_local_port_range, since the range is reserved from the kernel's ephemeral ports)"},
		&cli.UintFlag{Name: "mss-clamp", Usage: "lower the MSS of forwarded SYNs and SYN-ACKs to this (0: only to the links' MTUs)"},
		&cli.UintFlag{Name: "bgp-asn", Usage: "announce the VIPs over BGP from this ASN (with --bgp-router-id and --bgp-peer)"},
		&cli.StringFlag{Name: "bgp-router-id", Usage: "BGP router id (an IPv4 address of this host)"},
		&cli.StringSliceFlag{Name: "bgp-peer", Usage: "router to peer with, ADDR[:ASN] (no ASN: iBGP); repeat for more"},
		&cli.UintFlag{Name: "bgp-listen-port", Usage: "also accept BGP sessions on this port (0: only connect out)"},
		&cli.DurationFlag{Name: "bgp-hold", Value: config.DefaultHoldSeconds * time.Second, Usage: "BGP hold time offered to routers: how long they keep a killed instance's routes"},
		&cli.DurationFlag{Name: "bgp-drain", Value: 3 * time.Second, Usage: "on SIGTERM, keep forwarding this long after withdrawing the VIPs"},
	},
	Action: runAction,
}

func runAction(c *cli.Context) error {
	log, err := newLogger(c.String("log-level"))
	if err != nil {
		return err
	}
	defer log.Sync()
	svcs, err := servicesFromFlags(c)
	if err != nil {
		return err
	}
	mode, err := bpf.ParseMode(c.String("xdp-mode"))
	if err != nil {
		return err
	}
	cpus, err := parseCPUs(c.String("cpus"))
	if err != nil {
		return err
	}
	xo := xsk.DefaultOptions
	xo.NumFrames = c.Int("frames")
	if xo.NumFrames < 2*xo.RingSize {
		return fmt.Errorf("--frames %d: need at least %d (twice the ring size)", xo.NumFrames, 2*xo.RingSize)
	}
	snatAddrs, snatPorts, err := snatFromFlags(c)
	if err != nil {
		return err
	}
	if c.Uint("mss-clamp") > 65535 {
		return fmt.Errorf("--mss-clamp %d: want 0 to 65535", c.Uint("mss-clamp"))
	}
	bgpSeed, err := bgpFromFlags(c)
	if err != nil {
		return err
	}
	// The first SIGINT/SIGTERM stops the daemon (gracefully: BGP withdraw,
	// drain, detach); a second one cuts the drain short.
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	hurry := make(chan struct{})
	term := make(chan os.Signal, 2)
	signal.Notify(term, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(term)
	go func() {
		<-term
		cancel()
		<-term
		close(hurry)
	}()
	// An absolute path: SIGHUP reads it again whatever the working directory.
	configPath := c.String("config")
	if configPath != "" {
		if configPath, err = filepath.Abs(configPath); err != nil {
			return err
		}
	}
	// SIGHUP re-applies --config; without one it is ignored: a closed
	// terminal or a reload by habit must not kill the daemon without
	// cleanup, which Go's default would do.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			if c.String("config") == "" {
				log.Info("SIGHUP received and ignored: the daemon keeps running; change the configuration through the API")
				continue
			}
			log.Info("SIGHUP received: re-applying the configuration file", zap.String("file", c.String("config")))
			select {
			case reload <- struct{}{}:
			default: // one is pending already
			}
		}
	}()
	return daemon.Run(ctx, daemon.Options{
		Upstream: c.String("upstream"), BackendIf: c.String("backend-if"), Mode: mode,
		Queues: c.Int("queues"), CPUs: cpus, Services: svcs, ConntrackSize: c.Int("conntrack-size"), WorkerFlows: c.Int("worker-flows"),
		XSK: xo, StatsInterval: c.Duration("stats-interval"),
		StatePath: c.String("state-file"), APISocket: socketPath(c), MetricsAddr: c.String("metrics-addr"),
		SNATAddrs: snatAddrs, SNATPorts: snatPorts, MSSClamp: uint16(c.Uint("mss-clamp")),
		BGP: bgpSeed, BGPDrain: c.Duration("bgp-drain"), Hurry: hurry, ConfigPath: configPath, Reload: reload,
		RestartHold: c.Duration("restart-hold"),
	}, log)
}

func servicesFromFlags(c *cli.Context) ([]config.Service, error) {
	var svcs []config.Service
	var backends []config.Backend
	for _, b := range c.StringSlice("backend") {
		be, err := config.ParseBackend(b)
		if err != nil {
			return nil, err
		}
		backends = append(backends, be)
	}
	if len(c.StringSlice("vip")) > 0 && len(backends) == 0 {
		return nil, fmt.Errorf("--vip needs at least one --backend")
	}
	if len(backends) > 0 && len(c.StringSlice("vip")) == 0 {
		return nil, fmt.Errorf("--backend needs at least one --vip")
	}
	for _, v := range c.StringSlice("vip") {
		s, err := config.ParseVIP(v)
		if err != nil {
			return nil, err
		}
		s.Backends = backends
		svcs = append(svcs, s)
	}
	for _, spec := range c.StringSlice("service") {
		s, err := config.ParseService(spec)
		if err != nil {
			return nil, err
		}
		svcs = append(svcs, s)
	}
	return config.Resolve(svcs)
}

func snatFromFlags(c *cli.Context) ([]netip.Addr, [2]uint16, error) {
	var addrs []netip.Addr
	for _, s := range c.StringSlice("snat-addr") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, [2]uint16{}, fmt.Errorf("--snat-addr %q: want an IPv4 or IPv6 address", s)
		}
		addrs = append(addrs, a)
	}
	if c.String("snat-ports") == "" {
		return addrs, [2]uint16{}, nil // the daemon chooses
	}
	r, err := config.ParsePortRange(c.String("snat-ports"))
	if err != nil || r == config.AnyPort && c.String("snat-ports") != "1-65535" {
		return nil, [2]uint16{}, fmt.Errorf("--snat-ports %q: want FROM-TO, e.g. 1024-65535", c.String("snat-ports"))
	}
	return addrs, [2]uint16{r.From, r.To}, nil
}

func parseCPUs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--cpus %q: want a comma list of CPU numbers", s)
		}
		cpus = append(cpus, n)
	}
	return cpus, nil
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Encoding = "console"
	cfg.EncoderConfig.EncodeTime = zapcore.TimeEncoderOfLayout(time.TimeOnly)
	return cfg.Build()
}

// bgpFromFlags returns the BGP settings the flags give (nil: none). They
// seed a new state file, as --service does.
func bgpFromFlags(c *cli.Context) (*config.BGP, error) {
	set := c.IsSet("bgp-asn") || c.IsSet("bgp-router-id") || c.IsSet("bgp-peer") || c.IsSet("bgp-listen-port") || c.IsSet("bgp-hold")
	if !set {
		return nil, nil
	}
	if !c.IsSet("bgp-asn") || !c.IsSet("bgp-router-id") || !c.IsSet("bgp-peer") {
		return nil, fmt.Errorf("BGP needs --bgp-asn, --bgp-router-id and at least one --bgp-peer")
	}
	f, err := bgpFlags(c, "bgp-")
	if err != nil {
		return nil, err
	}
	b, err := config.ParseBGP(f.ASN, f.RouterID, f.Peers, f.ListenPort, f.HoldSeconds)
	if err != nil {
		return nil, fmt.Errorf("--bgp-*: %w", err)
	}
	return b, nil
}
