package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// settings are what every mode's lab gets, so no mode is favoured by the
// lab rather than by its forwarding path.
const settings = "GRO on and threaded NAPI on the LB's up0/down0, the backends' and the client's eth0; " +
	"TSO off on the bridge ports, so veth hands every packet to that NAPI instead of the sender's softirq; " +
	"bridge netfilter (br_netfilter) off on the bridges; the LB (its NAPI kthreads and its forwarding " +
	"thread) pinned to the last CPU, the generator (one AF_XDP socket per other CPU, each on its own " +
	"client queue, 64-byte UDP over 1024 flows) and the backends' and client's NAPI kthreads to the others"

// lbCPU is the CPU every mode's LB runs on; the others are the generator's.
var lbCPU = runtime.NumCPU() - 1

// pinLab pins the LB's NAPI kthreads to lbCPU and everyone else's to the
// other CPUs, once the mode has set the lab up (XDP makes NAPI instances),
// and returns the LB's, whose CPU time is the LB's kernel work.
func pinLab(lab *testenv.Lab) ([]string, error) {
	lb, err := napiThreads(lab.UpstreamIf, lab.BackendIf)
	if err != nil {
		return nil, err
	}
	if err := pin(lb, lbCPU); err != nil {
		return nil, err
	}
	others, err := napiThreads("eth0")
	if err != nil {
		return nil, err
	}
	return lb, pin(others, generatorCPUs()...)
}

// generatorCPUs are the CPUs but lbCPU.
func generatorCPUs() []int {
	var out []int
	for c := range lbCPU {
		out = append(out, c)
	}
	return out
}

// pin sets the CPU affinity of the tasks whose stat files are given.
func pin(stats []string, cpus ...int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for _, f := range stats {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := unix.SchedSetaffinity(pid, &set); err != nil {
			return fmt.Errorf("pin task %d to %v: %w", pid, cpus, err)
		}
	}
	return nil
}

// applySettings sets the lab up as settings says.
func applySettings(lab *testenv.Lab) error {
	devs := []struct {
		ns  *testenv.NS
		ifs []string
	}{{lab.LB, []string{lab.UpstreamIf, lab.BackendIf}}, {lab.Client, []string{"eth0"}}}
	for _, b := range lab.Backends {
		devs = append(devs, struct {
			ns  *testenv.NS
			ifs []string
		}{b, []string{"eth0"}})
	}
	for _, d := range devs {
		for _, ifname := range d.ifs {
			if err := d.ns.Do(func() error {
				on, err := netlink.SetGRO(ifname, true)
				if err == nil && !on {
					err = fmt.Errorf("%s refused GRO", ifname)
				}
				return err
			}); err != nil {
				return err
			}
			// Threaded NAPI: the device's receive runs in a kthread of its
			// own (napi/IF-N), not in whichever thread transmitted to it,
			// so the LB's kernel work is its own and can be measured.
			if _, err := d.ns.Exec("sh", "-c", "echo 1 > /sys/class/net/"+ifname+"/threaded"); err != nil {
				return err
			}
		}
	}
	// veth passes a packet to the receiver's NAPI only if the sending end
	// has no TSO (or the receiver runs XDP); otherwise it is received in
	// the sender's context: the generator's, or the LB's for the backends.
	ports, err := lab.Switch.IP("-o", "link", "show", "type", "veth")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(ports), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		// EOPNOTSUPP: the port has no TSO to turn off.
		if err := lab.Switch.Do(func() error { return netlink.DisableTSO(name) }); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
			return err
		}
	}
	for _, k := range []string{"iptables", "ip6tables", "arptables"} {
		if _, err := lab.Switch.Exec("sysctl", "-qw", "net.bridge.bridge-nf-call-"+k+"=0"); err != nil {
			return err
		}
	}
	return nil
}

// cpuTicks is the CPU time (user + system, clock ticks) of the tasks whose
// /proc stat files are given.
func cpuTicks(stats []string) (uint64, error) {
	var total uint64
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		// After the command name in parentheses: state is field 3, utime 14, stime 15.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 13 {
			return 0, fmt.Errorf("%s: short stat", f)
		}
		for _, v := range fields[11:13] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", f, err)
			}
			total += n
		}
	}
	return total, nil
}

// ticksPerSecond is USER_HZ, 100 on Linux.
const ticksPerSecond = 100

// napiThreads are the stat files of the threaded-NAPI kthreads of the
// named devices (napi/up0-8193 ...). Device names are unique within a
// bench run: one lab at a time, and no other namespace uses up0 or down0.
func napiThreads(devs ...string) ([]string, error) {
	comms, err := filepath.Glob("/proc/[0-9]*/comm")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(b))
		for _, d := range devs {
			if strings.HasPrefix(name, "napi/"+d+"-") {
				out = append(out, filepath.Join(filepath.Dir(c), "stat"))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no threaded NAPI kthread for %v", devs)
	}
	return out, nil
}
