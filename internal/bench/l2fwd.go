package main

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
	"github.com/scmlb-xsk/scmlb-xsk/xsk"
)

// l2fwd is the AF_XDP baseline: the same XDP program steers the flood into
// a socket on up0, and one Go loop sends every frame out of down0 from the
// same UMEM with only its MACs rewritten (no conntrack, no Maglev, no
// checksum). It is the ceiling of AF_XDP in copy mode on this machine,
// what scmlb-xsk would reach if its pipeline cost nothing. It forwards
// only the UDP flood.
func l2fwd(td *testenv.Teardown, lab *testenv.Lab) ([]netip.Addr, []string, error) {
	var backendMACs [][6]byte
	for _, b := range lab.Backends {
		var mac [6]byte
		if err := b.Do(func() error {
			ifc, err := net.InterfaceByName("eth0")
			if err == nil {
				mac = [6]byte(ifc.HardwareAddr)
			}
			return err
		}); err != nil {
			return nil, nil, err
		}
		backendMACs = append(backendMACs, mac)
	}
	stop := make(chan struct{})
	ready := make(chan error, 1)
	tid := make(chan int, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := lab.LB.Do(func() error {
			up, err := net.InterfaceByName(lab.UpstreamIf)
			if err != nil {
				return err
			}
			down, err := net.InterfaceByName(lab.BackendIf)
			if err != nil {
				return err
			}
			p, err := bpf.Load()
			if err != nil {
				return err
			}
			defer p.Close()
			u, err := xsk.NewUMEM(xsk.Options{NumFrames: 8192, FrameSize: 2048, RingSize: 2048})
			if err != nil {
				return err
			}
			defer u.Close()
			in, err := u.Open(up.Index, 0)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := u.Open(down.Index, 0)
			if err != nil {
				return err
			}
			defer out.Close()
			if err := p.SetInterfaceSlot(up.Index, 0); err != nil {
				return err
			}
			if err := p.RegisterSocket(0, 0, in.FD()); err != nil {
				return err
			}
			if err := p.SetServices(map[bpf.Endpoint]uint32{{Addr: lab.VIP, Port: udpPort, Proto: fixture.ProtoUDP}: 1}); err != nil {
				return err
			}
			if err := p.Attach(up.Index, bpf.Native); err != nil {
				return err
			}
			tid <- unix.Gettid()
			ready <- nil
			forward(in, out, [6]byte(down.HardwareAddr), backendMACs, stop)
			return nil
		})
		if err != nil {
			ready <- err
		}
	}()
	if err := <-ready; err != nil {
		return nil, nil, fmt.Errorf("l2fwd: %w", err)
	}
	td.Cleanup(func() { close(stop); <-done })
	return []netip.Addr{lab.VIP}, []string{fmt.Sprintf("/proc/self/task/%d/stat", <-tid)}, nil
}

// forward moves frames from in to out until stop, alternating backends by
// the frame's source port.
func forward(in, out *xsk.Socket, src [6]byte, dst [][6]byte, stop <-chan struct{}) {
	runtime.LockOSThread() // already locked by Do; the thread's CPU time is the measure
	var set unix.CPUSet
	set.Set(lbCPU)
	unix.SchedSetaffinity(0, &set)
	batch := make([]xsk.Desc, 64)
	pfd := []unix.PollFd{{Fd: int32(in.FD()), Events: unix.POLLIN}}
	for {
		select {
		case <-stop:
			return
		default:
		}
		n := in.Receive(batch)
		for _, d := range batch[:n] {
			f := in.Frame(d)
			mac := dst[int(f[14+20+1]&1)%len(dst)] // the source port's low bit
			copy(f[0:6], mac[:])
			copy(f[6:12], src[:])
			out.Transmit(d.Addr, int(d.Len))
		}
		out.Flush()
		in.Flush()
		if n == 0 {
			unix.Poll(pfd, 10)
		}
	}
}
