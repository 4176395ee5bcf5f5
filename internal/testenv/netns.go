package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netns"
)

// Cleaner registers teardown; *testing.T and *Teardown satisfy it.
type Cleaner interface {
	Cleanup(func())
}

// Teardown collects cleanups for code that is not a test (the demo, the
// benchmark). It may be run from a signal handler while still in use.
type Teardown struct {
	mu  sync.Mutex
	fns []func()
}

// Cleanup registers fn to run at Run, last registered first.
func (d *Teardown) Cleanup(fn func()) {
	d.mu.Lock()
	d.fns = append(d.fns, fn)
	d.mu.Unlock()
}

// Run runs the registered cleanups in reverse order, once.
func (d *Teardown) Run() {
	d.mu.Lock()
	fns := d.fns
	d.fns = nil
	d.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// Sub returns a teardown that d also runs, for a part of the work that
// cleans up early (one benchmark lab after another).
func (d *Teardown) Sub() *Teardown {
	sub := &Teardown{}
	d.Cleanup(sub.Run)
	return sub
}

// Main runs fn as a root-only command named name: whatever fn registers is
// torn down when fn returns or on SIGINT/SIGTERM, and an error exits 1.
func Main(name string, fn func(td *Teardown) error) {
	if os.Geteuid() != 0 {
		fmt.Fprintf(os.Stderr, "%s: needs root (network namespaces, XDP, AF_XDP)\n", name)
		os.Exit(1)
	}
	td := &Teardown{}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		td.Run()
		os.Exit(130)
	}()
	err := fn(td)
	td.Run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// UniquePrefix returns a short random prefix for namespace names, so
// parallel or aborted runs never collide.
func UniquePrefix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return "sx" + hex.EncodeToString(b)
}

// NS is a named network namespace (visible to `ip netns`).
type NS struct {
	Name string
}

// NewNS creates namespace name with loopback up; it is deleted on cleanup.
func NewNS(c Cleaner, name string) (*NS, error) {
	if _, err := run("ip", "netns", "add", name); err != nil {
		return nil, err
	}
	ns := &NS{Name: name}
	c.Cleanup(func() {
		// Whatever still runs inside (a test's leftover, a daemon's
		// restart-hold holder) goes with the namespace.
		if out, err := run("ip", "netns", "pids", name); err == nil {
			for _, f := range strings.Fields(out) {
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		run("ip", "netns", "del", name)
	})
	if _, err := ns.IP("link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return ns, nil
}

// IP runs `ip -n NS args...`.
func (n *NS) IP(args ...string) (string, error) {
	return run("ip", append([]string{"-n", n.Name}, args...)...)
}

// Exec runs a command inside the namespace.
func (n *NS) Exec(name string, args ...string) (string, error) {
	return run("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Command returns an unstarted command that will run inside the namespace.
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Do runs fn on an OS thread switched into the namespace. Sockets fn creates
// stay in that namespace after it returns. The thread is discarded
// afterwards, so no other goroutine ever runs in the wrong namespace.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread exits with this goroutine.
		h, err := netns.GetFromName(n.Name)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", n.Name, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Endpoint is one end of a veth pair: interface name and optional address.
type Endpoint struct {
	If   string
	CIDR string // e.g. "10.9.0.1/24"; empty: no address
}

// NewVethPair makes two namespaces joined by a veth pair whose ends are up.
func NewVethPair(c Cleaner, a, b Endpoint) (*NS, *NS, error) {
	p := UniquePrefix()
	nsA, err := NewNS(c, p+"-a")
	if err != nil {
		return nil, nil, err
	}
	nsB, err := NewNS(c, p+"-b")
	if err != nil {
		return nil, nil, err
	}
	if err := Veth(nsA, a.If, nsB, b.If); err != nil {
		return nil, nil, err
	}
	for _, e := range []struct {
		ns *NS
		ep Endpoint
	}{{nsA, a}, {nsB, b}} {
		if e.ep.CIDR != "" {
			if _, err := e.ns.IP("addr", "add", e.ep.CIDR, "dev", e.ep.If); err != nil {
				return nil, nil, err
			}
		}
		if _, err := e.ns.IP("link", "set", e.ep.If, "up"); err != nil {
			return nil, nil, err
		}
	}
	return nsA, nsB, nil
}
