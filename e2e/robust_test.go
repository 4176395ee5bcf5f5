package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	nl "github.com/scmlb-xsk/scmlb-xsk/control/netlink"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// TestHostTrafficPasses: while the LB runs, a TCP service on the LB host's
// own address still answers (XDP_PASS to the kernel).
func TestHostTrafficPasses(t *testing.T) {
	lab, d := startLab(t, testenv.TwoArm)
	var l net.Listener
	if err := lab.LB.Do(func() error {
		var err error
		l, err = net.Listen("tcp4", "10.0.1.1:2222")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host"))
			c.Close()
		}
	}()
	conn, err := lab.Client.DialContext(context.Background(), "tcp4", "10.0.1.1:2222")
	if err != nil {
		t.Fatalf("host service unreachable while the LB runs: %v", err)
	}
	buf := make([]byte, 8)
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	n, _ := conn.Read(buf)
	conn.Close()
	if string(buf[:n]) != "host" {
		t.Fatalf("host service answered %q", buf[:n])
	}
	stopAndCheckDetached(t, lab, d)
}

// TestKilledDaemonLeavesNoXDP: the program is attached through a bpf_link,
// so even SIGKILL leaves the interfaces clean.
func TestKilledDaemonLeavesNoXDP(t *testing.T) {
	lab, d := startLab(t, testenv.TwoArm)
	if id := xdpProgID(t, lab, lab.UpstreamIf); id == 0 {
		t.Fatal("no XDP program attached while running")
	}
	d.Kill()
	err := testenv.WaitFor(5*time.Second, func() error {
		for _, name := range []string{lab.UpstreamIf, lab.BackendIf} {
			if id := xdpProgID(t, lab, name); id != 0 {
				return fmt.Errorf("%s still has XDP program %d", name, id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRefusesForeignXDP: an XDP program someone else attached is not
// silently replaced; the daemon exits with an error naming it.
func TestRefusesForeignXDP(t *testing.T) {
	testenv.RequireRoot(t)
	lab, err := testenv.NewLab(t, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 1})
	if err != nil {
		t.Fatal(err)
	}
	// A minimal program of someone else's: return XDP_PASS.
	foreign, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "someone_else", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	if err := lab.LB.Do(func() error {
		ifc, err := nl.InterfaceByName(lab.UpstreamIf)
		if err != nil {
			return err
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: foreign, Interface: ifc.Index})
		if err == nil {
			t.Cleanup(func() { l.Close() })
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	d, err := testenv.StartDaemon(t, lab.LB, daemonBin, t.TempDir(), "--upstream", lab.UpstreamIf, "--backend-if", lab.BackendIf,
		"--vip", lab.VIP.String()+":80", "--backend", lab.BackendAddrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitFor(10*time.Second, func() error {
		if done, _ := d.Exited(); !done {
			return errors.New("daemon still running")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exited(); err == nil || !strings.Contains(d.Output(), "already has XDP program") {
		t.Fatalf("exit %v, output:\n%s", err, d.Output())
	}
}

func xdpProgID(t *testing.T, lab *testenv.Lab, name string) uint32 {
	t.Helper()
	var ifc nl.Interface
	if err := lab.LB.Do(func() error {
		var err error
		ifc, err = nl.InterfaceByName(name)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ifc.XDPProgID
}

// TestSigkillRestartReplacesStaleXDP: a daemon killed with SIGKILL leaves
// its state file; an earlier run's program still attached through netlink
// is replaced; the restarted daemon restores the state and forwards.
func TestSigkillRestartReplacesStaleXDP(t *testing.T) {
	dir := t.TempDir()
	lab, d := startControlLab(t, 2, dir)
	cli(t, d, "service", "add", "--vip", lab.VIP.String()+":80")
	cli(t, d, "backend", "add", "--service", "1", "--address", lab.BackendAddrs[0].String())
	cli(t, d, "backend", "add", "--service", "1", "--address", lab.BackendAddrs[1].String(), "--weight", "2")
	cli(t, d, "backend", "drain", "--id", "1")
	before := stripCounters(t, cli(t, d, "service", "get", "--json"))
	httpOK(t, lab, 3)
	d.Kill()

	// What an older run attaching through netlink would leave behind.
	prog, err := bpf.Load()
	if err != nil {
		t.Fatal(err)
	}
	err = lab.LB.Do(func() error {
		for _, name := range []string{lab.UpstreamIf, lab.BackendIf} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetXdpFd(l, prog.XDP().FD()); err != nil {
				return err
			}
		}
		return nil
	})
	prog.Close() // the attachment keeps the program alive
	if err != nil {
		t.Fatal(err)
	}
	if xdpProgID(t, lab, lab.UpstreamIf) == 0 {
		t.Fatal("stale program not attached")
	}

	d2 := startDaemonIn(t, lab, dir)
	if !strings.Contains(d2.Output(), "replacing a stale scmlb-xsk XDP program") {
		t.Errorf("no replacement logged:\n%s", d2.Output())
	}
	if after := stripCounters(t, cli(t, d2, "service", "get", "--json")); after != before {
		t.Fatalf("state after SIGKILL and restart:\n%s\nwant\n%s", after, before)
	}
	if seen := spread(t, lab, 10); seen["backend1"] != 0 || seen["backend2"] != 10 {
		t.Fatalf("drained backend got flows after restart: %v", seen)
	}
	stopAndCheckDetached(t, lab, d2)
}
