// Command bench compares scmlb-xsk with an AF_XDP l2fwd baseline, an
// nftables DNAT load balancer and plain kernel routing on the same netns
// topology with the same lab settings: 64-byte UDP many-flow forwarding
// rate with the LB's CPU cost per packet, TCP throughput and new TCP
// connections per second. Every mode runs -runs times (fresh labs, modes
// interleaved) and every figure is reported as the range over the runs.
// Run it with `make bench` (root). Everything is bounded in time and torn
// down at the end.
package main

import (
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// result is one mode's measurements in one run.
type result struct {
	mode        string
	udpOnly     bool
	udpSent     uint64
	udpRecv     uint64
	lbCPU       time.Duration // the LB's CPU time during the UDP flood
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

// cpuPerMpkt is the LB's CPU milliseconds per million delivered packets.
func (r result) cpuPerMpkt() float64 {
	if r.udpRecv == 0 {
		return 0
	}
	return float64(r.lbCPU.Milliseconds()) / (float64(r.udpRecv) / 1e6)
}

func main() {
	bin := flag.String("bin", "bin/scmlb-xsk", "scmlb-xsk binary")
	dur := flag.Duration("duration", 3*time.Second, "length of each measurement")
	runs := flag.Int("runs", 3, "runs of every mode")
	only := flag.String("modes", "", "comma list of modes to run (default: all)")
	flag.Parse()
	testenv.Main("bench", func(td *testenv.Teardown) error {
		fmt.Printf("lab: %d CPUs shared by generator, LB and backends; %s; %s per measurement\n\n",
			runtime.NumCPU(), settings, *dur)
		byMode := map[string][]result{}
		var order []string
		for run := 1; run <= *runs; run++ {
			for _, m := range modes(*bin) {
				if *only != "" && !slices.Contains(strings.Split(*only, ","), m.name) {
					continue
				}
				r, err := runMode(td.Sub(), m, *dur)
				if err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
				if run == 1 {
					order = append(order, m.name)
				}
				byMode[m.name] = append(byMode[m.name], r)
				fmt.Printf("run %d %-10s udp %9.0f pps delivered (%9.0f offered), LB CPU %6.0f ms/Mpkt", run, r.mode,
					r.pps(), r.sentPPS(), r.cpuPerMpkt())
				if !r.udpOnly {
					fmt.Printf("  tcp %5.2f Gbit/s  %6.0f conn/s", r.gbps(), r.cps())
				}
				fmt.Println()
			}
		}
		report(order, byMode)
		return nil
	})
}

// span formats the range of vs.
func span(vs []float64, format string) string {
	return fmt.Sprintf(format, slices.Min(vs)) + "-" + fmt.Sprintf(format, slices.Max(vs))
}

// each is f of every run.
func each(rs []result, f func(result) float64) []float64 {
	vs := make([]float64, len(rs))
	for i, r := range rs {
		vs[i] = f(r)
	}
	return vs
}

// ratios is the range over runs of a's figure over b's in the same run.
func ratios(a, b []result, f func(result) float64) string {
	var vs []float64
	for i := range min(len(a), len(b)) {
		vs = append(vs, f(a[i])/f(b[i]))
	}
	return span(vs, "x%.2f")
}

func report(order []string, byMode map[string][]result) {
	fmt.Printf("\nranges over %d runs:\n", len(byMode[order[0]]))
	for _, name := range order {
		rs := byMode[name]
		fmt.Printf("  %-10s udp %s pps, LB CPU %s ms/Mpkt", name, span(each(rs, result.pps), "%.0f"),
			span(each(rs, result.cpuPerMpkt), "%.0f"))
		if !rs[0].udpOnly {
			fmt.Printf(", tcp %s Gbit/s, %s conn/s", span(each(rs, result.gbps), "%.2f"), span(each(rs, result.cps), "%.0f"))
		}
		fmt.Println()
	}
	x := byMode[order[0]]
	fmt.Printf("\n%s against the others (same run):\n", order[0])
	for _, name := range order[1:] {
		b := byMode[name]
		fmt.Printf("  vs %-10s udp pps %s, LB CPU per packet %s", name, ratios(x, b, result.pps), ratios(x, b, result.cpuPerMpkt))
		if !b[0].udpOnly {
			fmt.Printf(", tcp %s, conn/s %s", ratios(x, b, result.gbps), ratios(x, b, result.cps))
		}
		fmt.Println()
	}
}
