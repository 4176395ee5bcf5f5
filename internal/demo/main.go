// Command demo builds a dual-stack namespace lab, runs scmlb-xsk in it,
// sends real HTTP, UDP and port-mapped TCP traffic to the VIP and HTTP to
// an IPv6 VIP, prints which backend answered, and tears everything down.
// Run it with `make demo` (root).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

func main() {
	bin := flag.String("bin", "bin/scmlb-xsk", "scmlb-xsk binary")
	mode := flag.String("xdp-mode", "native", "native or generic")
	flag.Parse()
	testenv.Main("demo", func(td *testenv.Teardown) error {
		if err := run(td, *bin, *mode); err != nil {
			return err
		}
		td.Run()
		fmt.Println("torn down: namespaces, links and processes removed")
		return nil
	})
}

func run(td *testenv.Teardown, bin, mode string) error {
	lab, err := testenv.NewLab(td, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2, IPv6: true})
	if err != nil {
		return err
	}
	names := []string{"backend1", "backend2"}
	for i, b := range lab.Backends {
		if _, err := testenv.ServeBackend(td, b, names[i]); err != nil {
			return err
		}
	}
	vip := lab.VIP.String()
	b1, b2 := lab.BackendAddrs[0].String(), lab.BackendAddrs[1].String()
	fmt.Printf("lab: client %s -> [%s up0 | scmlb-xsk | down0] -> %s (%s), %s (%s); VIP %s, %s XDP\n",
		lab.ClientAddr, lab.LB.Name, b1, names[0], b2, names[1], vip, mode)
	dir, err := os.MkdirTemp("", "scmlb-demo")
	if err != nil {
		return err
	}
	td.Cleanup(func() { os.RemoveAll(dir) })
	vip6 := "[" + lab.VIP6.String() + "]"
	fmt.Printf("     IPv6: client %s, backends %s, %s; VIP %s\n", lab.ClientAddrs6[0], lab.BackendAddrs6[0],
		lab.BackendAddrs6[1], lab.VIP6)
	d, err := testenv.StartDaemon(td, lab.LB, bin, dir, "--upstream", lab.UpstreamIf, "--backend-if", lab.BackendIf,
		"--xdp-mode", mode, "--vip", vip+":80/tcp", "--vip", vip+":9090/udp", "--backend", b1, "--backend", b2,
		"--service", fmt.Sprintf("tcp/%s:3307=%s:3306,%s:3306", vip, b1, b2),
		"--service", fmt.Sprintf("tcp/%s:80=[%s]:80,[%s]:80", vip6, lab.BackendAddrs6[0], lab.BackendAddrs6[1]))
	if err != nil {
		return err
	}
	err = testenv.WaitFor(15*time.Second, func() error {
		if done, err := d.Exited(); done {
			return fmt.Errorf("daemon exited: %v\n%s", err, d.Output())
		}
		_, err := lab.Client.UDPRequest(vip+":9090", "ready?", 300*time.Millisecond)
		return err
	})
	if err != nil {
		return err
	}

	httpCounts := map[string]int{}
	client := lab.Client.HTTPClient(3 * time.Second)
	for i := 0; i < 100; i++ {
		resp, err := client.Get("http://" + vip + "/who")
		if err != nil {
			return fmt.Errorf("GET %d: %w", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		httpCounts[string(body)]++
	}
	printCounts("HTTP GET http://"+vip+"/who, 100 connections", httpCounts)

	http6Counts := map[string]int{}
	for i := 0; i < 50; i++ {
		resp, err := client.Get("http://" + vip6 + "/who")
		if err != nil {
			return fmt.Errorf("GET %d over IPv6: %w", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		http6Counts[string(body)]++
	}
	printCounts("HTTP GET http://"+vip6+"/who over IPv6, 50 connections", http6Counts)

	udpCounts := map[string]int{}
	for i := 0; i < 40; i++ {
		got, err := lab.Client.UDPRequest(vip+":9090", fmt.Sprintf("req-%d", i), 2*time.Second)
		if err != nil {
			return fmt.Errorf("udp %d: %w", i, err)
		}
		name, _, _ := strings.Cut(got, ":")
		udpCounts[name]++
	}
	printCounts("UDP "+vip+":9090, 40 request/response flows", udpCounts)

	tcpCounts := map[string]int{}
	for i := 0; i < 10; i++ {
		conn, err := lab.Client.DialContext(context.Background(), "tcp4", vip+":3307")
		if err != nil {
			return fmt.Errorf("dial %s:3307: %w", vip, err)
		}
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		r := bufio.NewReader(conn)
		name, _ := r.ReadString('\n')
		fmt.Fprintf(conn, "ping %d\n", i)
		echo, err := r.ReadString('\n')
		conn.Close()
		if err != nil || echo != fmt.Sprintf("ping %d\n", i) {
			return fmt.Errorf("echo through %s:3307 -> :3306: %q %v", vip, echo, err)
		}
		tcpCounts[strings.TrimSpace(name)]++
	}
	printCounts("TCP "+vip+":3307 -> backends :3306 (port mapping), 10 echo sessions", tcpCounts)

	table, err := d.CLI("backend", "get")
	if err != nil {
		return err
	}
	fmt.Print("\nthe load balancer's view (scmlb-xsk backend get):\n" + table + "\n")

	if err := d.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		return fmt.Errorf("daemon exit: %w\n%s", err, d.Output())
	}
	out := d.Output()
	if m := regexp.MustCompile(`"rx": \d+, "forwarded": \d+, "replied": \d+, "new_flows": \d+`).FindString(out); m != "" {
		fmt.Println("daemon counters at exit:", m)
	}
	if strings.Contains(out, "xdp detached") {
		fmt.Println("daemon stopped on SIGTERM; XDP detached")
	}
	return nil
}

func printCounts(title string, counts map[string]int) {
	fmt.Println(title + ":")
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  %-9s %3d %s\n", k, counts[k], strings.Repeat("#", counts[k]/2))
	}
}
