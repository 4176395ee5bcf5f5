// Command bench compares scmlb-xsk with an nftables DNAT load balancer and
// with plain kernel routing on the same netns topology, in one run: 64-byte
// UDP many-flow forwarding rate, TCP throughput and new TCP connections per
// second. Run it with `make bench` (root). Everything is bounded in time and
// torn down at the end.
package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// result is one mode's measurements.
type result struct {
	mode        string
	udpSent     uint64
	udpRecv     uint64
	tcpBytes    uint64
	conns       uint64
	duration    time.Duration
	udpFlows    int
	tcpStreams  int
	connWorkers int
}

func (r result) pps() float64     { return float64(r.udpRecv) / r.duration.Seconds() }
func (r result) sentPPS() float64 { return float64(r.udpSent) / r.duration.Seconds() }
func (r result) gbps() float64    { return float64(r.tcpBytes) * 8 / r.duration.Seconds() / 1e9 }
func (r result) cps() float64     { return float64(r.conns) / r.duration.Seconds() }

func main() {
	bin := flag.String("bin", "bin/scmlb-xsk", "scmlb-xsk binary")
	dur := flag.Duration("duration", 3*time.Second, "length of each measurement")
	flag.Parse()
	testenv.Main("bench", func(td *testenv.Teardown) error {
		var results []result
		for _, m := range modes(*bin) {
			r, err := runMode(td.Sub(), m, *dur)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			results = append(results, r)
			fmt.Printf("%-10s udp %9.0f pps delivered (%9.0f offered)  tcp %6.2f Gbit/s  %7.0f conn/s\n",
				r.mode, r.pps(), r.sentPPS(), r.gbps(), r.cps())
		}
		report(results)
		return nil
	})
}

func report(rs []result) {
	x := rs[0]
	fmt.Printf("\nratios of %s to the baselines (same topology, same run, %s each):\n", x.mode, x.duration)
	for _, b := range rs[1:] {
		fmt.Printf("  vs %-9s udp pps x%.2f   tcp throughput x%.2f   new conn/s x%.2f\n",
			b.mode, x.pps()/b.pps(), x.gbps()/b.gbps(), x.cps()/b.cps())
	}
}
