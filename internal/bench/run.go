package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
	"github.com/scmlb-xsk/scmlb-xsk/xsk"
)

const (
	flows      = 1024
	tcpStreams = 4
	connWorker = 4
)

// runMode measures one mode on a lab of its own, torn down (td) before the next.
func runMode(td *testenv.Teardown, m mode, dur time.Duration) (result, error) {
	defer td.Run()
	r := result{mode: m.name, duration: dur, udpFlows: flows, tcpStreams: tcpStreams, connWorkers: connWorker, udpOnly: m.udpOnly}
	lab, err := testenv.NewLab(td, testenv.LabConfig{Topology: testenv.TwoArm, Backends: 2, ClientQueues: len(generatorCPUs())})
	if err != nil {
		return r, err
	}
	var counters []*bpf.Program
	for _, b := range lab.Backends {
		p, err := backend(td, b)
		if err != nil {
			return r, err
		}
		counters = append(counters, p)
	}
	if err := applySettings(lab); err != nil {
		return r, err
	}
	targets, tasks, err := m.setup(td, lab)
	if err != nil {
		return r, err
	}
	if !m.udpOnly {
		if err := waitReady(lab, targets); err != nil {
			return r, err
		}
	}
	napi, err := pinLab(lab)
	if err != nil {
		return r, err
	}
	// The LB's CPU: its user-space forwarder and its NAPI kthreads.
	lb := append(tasks, napi...)
	cpu0, err := cpuTicks(lb)
	if err != nil {
		return r, err
	}
	before := delivered(counters)
	if r.udpSent, err = flood(lab, targets, dur); err != nil {
		return r, err
	}
	cpu1, err := cpuTicks(lb)
	if err != nil {
		return r, err
	}
	time.Sleep(300 * time.Millisecond) // in-flight packets
	r.udpRecv = delivered(counters) - before
	r.lbCPU = time.Duration(cpu1-cpu0) * time.Second / ticksPerSecond
	if m.udpOnly {
		return r, nil
	}
	if r.tcpBytes, err = throughput(lab, targets, dur); err != nil {
		return r, err
	}
	r.conns = connect(lab, targets, dur)
	return r, nil
}

// backend installs the packet counter (XDP dropping the flood with a
// firewall rule, so the count is what arrived) and the TCP servers.
func backend(td *testenv.Teardown, ns *testenv.NS) (*bpf.Program, error) {
	p, err := bpf.Load()
	if err != nil {
		return nil, err
	}
	td.Cleanup(func() { p.Close() })
	err = ns.Do(func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		if err := p.Attach(ifc.Index, bpf.Native); err != nil {
			return err
		}
		return p.SetFirewall([]bpf.FirewallRule{{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Proto: fixture.ProtoUDP,
			SrcFrom: 0, SrcTo: 65535, DstFrom: udpPort, DstTo: udpPort}})
	})
	if err != nil {
		return nil, err
	}
	var sink, closer net.Listener
	if err := ns.Do(func() error {
		var err error
		if sink, err = net.Listen("tcp4", fmt.Sprintf(":%d", tcpPort)); err != nil {
			return err
		}
		closer, err = net.Listen("tcp4", fmt.Sprintf(":%d", connPort))
		return err
	}); err != nil {
		return nil, err
	}
	td.Cleanup(func() { sink.Close(); closer.Close() })
	go testenv.Serve(sink, func(c net.Conn) { io.Copy(io.Discard, c) })
	go testenv.Serve(closer, func(net.Conn) {}) // the server closes first: TIME_WAIT stays here
	return p, nil
}

func delivered(ps []*bpf.Program) uint64 {
	var n uint64
	for _, p := range ps {
		if d, err := p.FirewallDrops(); err == nil {
			n += d[0].Packets
		}
	}
	return n
}

func waitReady(lab *testenv.Lab, targets []netip.Addr) error {
	return testenv.WaitFor(15*time.Second, func() error {
		for _, t := range targets {
			c, err := lab.Client.DialContext(context.Background(), "tcp4", netip.AddrPortFrom(t, connPort).String())
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	})
}

// flood sends 64-byte UDP frames over `flows` source ports for dur from
// one AF_XDP socket per generator CPU on the client, each on its own queue
// and pinned to its CPU, and returns how many the sockets sent.
func flood(lab *testenv.Lab, targets []netip.Addr, dur time.Duration) (uint64, error) {
	var gw net.HardwareAddr
	if err := lab.LB.Do(func() error {
		ifc, err := net.InterfaceByName(lab.UpstreamIf)
		if err == nil {
			gw = ifc.HardwareAddr
		}
		return err
	}); err != nil {
		return 0, err
	}
	var sent atomic.Uint64
	var wg sync.WaitGroup
	gen := generatorCPUs()
	cpus := len(gen)
	errs := make(chan error, cpus)
	deadline := time.Now().Add(dur)
	for q := range cpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- lab.Client.Do(func() error {
				var set unix.CPUSet
				set.Set(gen[q])
				if err := unix.SchedSetaffinity(0, &set); err != nil {
					return err
				}
				ifc, err := net.InterfaceByName("eth0")
				if err != nil {
					return err
				}
				frames := make([][]byte, flows/cpus)
				for i := range frames {
					port := uint16(10000 + i*cpus + q)
					frames[i] = fixture.Frame{SrcMAC: [6]byte(ifc.HardwareAddr), DstMAC: [6]byte(gw), Src: lab.ClientAddr,
						Dst: targets[int(port)%len(targets)], Proto: fixture.ProtoUDP, SrcPort: port, DstPort: udpPort,
						Payload: make([]byte, 64-14-20-8)}.Bytes()
				}
				s, err := xsk.Open(ifc.Index, q, xsk.Options{NumFrames: 4096, FrameSize: 2048, RingSize: 2048, Copy: true})
				if err != nil {
					return err
				}
				defer s.Close()
				for k := 0; time.Now().Before(deadline); {
					for i := 0; i < 64; i++ {
						addr, buf, ok := s.Alloc()
						if !ok {
							break
						}
						n := copy(buf, frames[k%len(frames)])
						k++
						s.Transmit(addr, n)
					}
					s.Flush()
				}
				sent.Add(s.Counters().TxPackets)
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return sent.Load(), nil
}

// throughput runs tcpStreams bulk senders for dur and returns the bytes written.
func throughput(lab *testenv.Lab, targets []netip.Addr, dur time.Duration) (uint64, error) {
	var total atomic.Uint64
	var wg sync.WaitGroup
	errc := make(chan error, tcpStreams)
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(dur)
	for i := 0; i < tcpStreams; i++ {
		c, err := lab.Client.DialContext(context.Background(), "tcp4",
			netip.AddrPortFrom(targets[i%len(targets)], tcpPort).String())
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetWriteDeadline(deadline)
			for {
				n, err := c.Write(buf)
				total.Add(uint64(n))
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
						errc <- err
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return 0, err
	default:
	}
	return total.Load(), nil
}

// connect opens and closes connections from connWorker goroutines for dur.
func connect(lab *testenv.Lab, targets []netip.Addr, dur time.Duration) uint64 {
	var n atomic.Uint64
	var wg sync.WaitGroup
	deadline := time.Now().Add(dur)
	for w := 0; w < connWorker; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			one := make([]byte, 1)
			for i := w; time.Now().Before(deadline); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				c, err := lab.Client.DialContext(ctx, "tcp4", netip.AddrPortFrom(targets[i%len(targets)], connPort).String())
				cancel()
				if err != nil {
					continue
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := c.Read(one); err == io.EOF { // the server's close arrived: a full connection
					n.Add(1)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	return n.Load()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
