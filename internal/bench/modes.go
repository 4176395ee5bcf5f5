package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

const (
	udpPort  = 9090 // flooded; dropped and counted by XDP on the backends
	tcpPort  = 5201 // throughput: the backend reads until EOF
	connPort = 5202 // connection rate: the backend closes at once
)

// mode sets a lab up to forward VIP traffic one way; targets are the
// addresses the client sends to, tasks the /proc stat files of the
// processes or threads that forward in user space (the LB's kernel work
// is measured from its NAPI kthreads in every mode).
type mode struct {
	name    string
	udpOnly bool // forwards the UDP flood only
	setup   func(td *testenv.Teardown, lab *testenv.Lab) (targets []netip.Addr, tasks []string, err error)
}

func modes(bin string) []mode {
	return []mode{
		{"scmlb-xsk", false, func(td *testenv.Teardown, lab *testenv.Lab) ([]netip.Addr, []string, error) {
			dir, err := os.MkdirTemp("", "scmlb-bench")
			if err != nil {
				return nil, nil, err
			}
			td.Cleanup(func() { os.RemoveAll(dir) })
			vip := lab.VIP.String()
			d, err := testenv.StartDaemon(td, lab.LB, bin, dir, "--upstream", lab.UpstreamIf, "--backend-if", lab.BackendIf,
				"--vip", fmt.Sprintf("%s:%d/udp", vip, udpPort), "--vip", fmt.Sprintf("%s:%d/tcp", vip, tcpPort), "--vip", fmt.Sprintf("%s:%d/tcp", vip, connPort),
				"--backend", lab.BackendAddrs[0].String(), "--backend", lab.BackendAddrs[1].String(), "--log-level", "warn", "--cpus", fmt.Sprint(lbCPU))
			if err != nil {
				return nil, nil, err
			}
			td.Cleanup(func() {
				if os.Getenv("BENCH_STATS") != "" {
					out, _ := d.CLI("stat")
					fmt.Fprintln(os.Stderr, out)
				}
				d.Stop(syscall.SIGTERM, 10*time.Second)
			})
			return []netip.Addr{lab.VIP}, []string{fmt.Sprintf("/proc/%d/stat", d.Pid())}, nil
		}},
		{"xsk-l2fwd", true, l2fwd},
		{"nftables", false, func(td *testenv.Teardown, lab *testenv.Lab) ([]netip.Addr, []string, error) {
			b1, b2 := lab.BackendAddrs[0], lab.BackendAddrs[1]
			// The usual nftables load balancer: DNAT chosen by a hash of the
			// client address and port, conntrack for the replies.
			ruleset := fmt.Sprintf(`table ip lb {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %[1]s meta l4proto { tcp, udp } th dport { %[2]d, %[3]d, %[6]d } dnat to jhash ip saddr . th sport mod 2 map { 0 : %[4]s, 1 : %[5]s }
	}
}
`, lab.VIP, udpPort, tcpPort, b1, b2, connPort)
			if err := nft(lab.LB, ruleset); err != nil {
				return nil, nil, err
			}
			return []netip.Addr{lab.VIP}, nil, forwarding(lab.LB)
		}},
		{"routing", false, func(td *testenv.Teardown, lab *testenv.Lab) ([]netip.Addr, []string, error) {
			// No load balancing: the client addresses the backends itself.
			return lab.BackendAddrs, nil, forwarding(lab.LB)
		}},
	}
}

func forwarding(ns *testenv.NS) error {
	_, err := ns.Exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
	return err
}

func nft(ns *testenv.NS, ruleset string) error {
	cmd := ns.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, out)
	}
	return nil
}
