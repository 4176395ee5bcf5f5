package xsk_test

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
	"github.com/scmlb-xsk/scmlb-xsk/xsk"
)

// TestReceiveAndTransmit steers UDP to a service port into the socket, then
// transmits a crafted frame back and reads it with a UDP socket in the peer.
func TestReceiveAndTransmit(t *testing.T) {
	sock, v0, b := steeredSocket(t, xsk.Options{NumFrames: 256, FrameSize: 2048, RingSize: 64})

	// B listens for what the socket will transmit, and sends the probe.
	var listener *net.UDPConn
	if err := b.Do(func() error {
		var err error
		listener, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 9, 0, 2), Port: 7777})
		if err != nil {
			return err
		}
		c, err := net.Dial("udp4", "10.9.0.1:9999")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello xsk"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer listener.Close()

	batch := make([]xsk.Desc, 16)
	var got []byte
	var peerMAC [6]byte
	for deadline := time.Now().Add(3 * time.Second); got == nil && time.Now().Before(deadline); {
		pfd := []unix.PollFd{{Fd: int32(sock.FD()), Events: unix.POLLIN}}
		unix.Poll(pfd, 100)
		if n := sock.Receive(batch); n > 0 {
			f := sock.Frame(batch[0])
			got = append([]byte(nil), f...)
			copy(peerMAC[:], f[6:12])
			for _, d := range batch[:n] {
				sock.Release(d.Addr)
			}
		}
	}
	if !bytes.HasSuffix(got, []byte("hello xsk")) {
		t.Fatalf("socket received %x", got)
	}

	reply := fixture.Frame{SrcMAC: [6]byte(v0.HardwareAddr), DstMAC: peerMAC,
		Src: netip.MustParseAddr("10.9.0.1"), Dst: netip.MustParseAddr("10.9.0.2"),
		Proto: fixture.ProtoUDP, SrcPort: 9999, DstPort: 7777, Payload: []byte("hello back")}.Bytes()
	addr, buf, ok := sock.Alloc()
	if !ok {
		t.Fatal("no free frame")
	}
	copy(buf, reply)
	if !sock.Transmit(addr, len(reply)) {
		t.Fatal("tx ring full")
	}
	sock.Flush()
	listener.SetReadDeadline(time.Now().Add(3 * time.Second))
	msg := make([]byte, 64)
	n, _, err := listener.ReadFromUDP(msg)
	if err != nil || string(msg[:n]) != "hello back" {
		t.Fatalf("peer read %q, %v", msg[:n], err)
	}
	c := sock.Counters()
	if c.RxPackets != 1 || c.TxPackets != 1 || c.KickErrors != 0 {
		t.Fatalf("counters %+v", c)
	}
	if ks, err := sock.KernelStats(); err != nil || ks.Rx_dropped != 0 {
		t.Fatalf("kernel stats %+v, %v", ks, err)
	}
}

// TestRingFullIsCounted: with nobody draining a tiny RX ring the kernel
// drops and counts; once drained, the socket receives again.
func TestRingFullIsCounted(t *testing.T) {
	sock, _, b := steeredSocket(t, xsk.Options{NumFrames: 16, FrameSize: 2048, RingSize: 4})
	send := func(n int) {
		t.Helper()
		if err := b.Do(func() error {
			c, err := net.Dial("udp4", "10.9.0.1:9999")
			if err != nil {
				return err
			}
			defer c.Close()
			for i := 0; i < n; i++ {
				c.Write([]byte("flood"))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	send(50)
	time.Sleep(100 * time.Millisecond)
	ks, err := sock.KernelStats()
	if err != nil {
		t.Fatal(err)
	}
	if ks.Rx_dropped+ks.Rx_ring_full+ks.Rx_fill_ring_empty_descs == 0 {
		t.Fatalf("50 packets into a 4-slot ring and no drop counted: %+v", ks)
	}
	t.Logf("kernel stats after the flood: %+v", ks)
	batch := make([]xsk.Desc, 16)
	for n := sock.Receive(batch); n > 0; n = sock.Receive(batch) {
		for _, d := range batch[:n] {
			sock.Release(d.Addr)
		}
		sock.Flush() // refill
	}
	send(1)
	deadline := time.Now().Add(2 * time.Second)
	for sock.Receive(batch) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("socket does not receive after the ring drained")
		}
		sock.Flush()
		time.Sleep(10 * time.Millisecond)
	}
}

// steeredSocket builds two namespaces joined by v0/v1 (10.9.0.1, .2),
// attaches the XDP program to v0 steering UDP 10.9.0.1:9999 into an AF_XDP
// socket with the given options, and returns the socket, v0 and the peer.
func steeredSocket(t *testing.T, o xsk.Options) (*xsk.Socket, *net.Interface, *testenv.NS) {
	t.Helper()
	s, v0, _, b := steered(t, o)
	return s, v0, b
}

// steeredSocketNS is steeredSocket returning the socket's namespace
// instead of v0.
func steeredSocketNS(t *testing.T, o xsk.Options) (*xsk.Socket, *testenv.NS, *testenv.NS) {
	t.Helper()
	s, _, a, b := steered(t, o)
	return s, a, b
}

func steered(t *testing.T, o xsk.Options) (*xsk.Socket, *net.Interface, *testenv.NS, *testenv.NS) {
	t.Helper()
	testenv.RequireRoot(t)
	a, b, err := testenv.NewVethPair(t, testenv.Endpoint{If: "v0", CIDR: "10.9.0.1/24"}, testenv.Endpoint{If: "v1", CIDR: "10.9.0.2/24"})
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.TxChecksumOff(b, "v1"); err != nil {
		t.Fatal(err)
	}
	var sock *xsk.Socket
	var prog *bpf.Program
	var v0 *net.Interface
	err = a.Do(func() error {
		var err error
		if v0, err = net.InterfaceByName("v0"); err != nil {
			return err
		}
		if prog, err = bpf.Load(); err != nil {
			return err
		}
		if err = prog.Attach(v0.Index, bpf.Native); err != nil {
			return err
		}
		if err = prog.SetServices(map[bpf.Endpoint]uint32{{Addr: netip.MustParseAddr("10.9.0.1"), Port: 9999, Proto: 17}: 1}); err != nil {
			return err
		}
		if sock, err = xsk.Open(v0.Index, 0, o); err != nil {
			return err
		}
		return prog.RegisterSocket(0, 0, sock.FD())
	})
	if sock != nil {
		t.Cleanup(func() { sock.Close() })
	}
	if prog != nil {
		t.Cleanup(func() { prog.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	return sock, v0, a, b
}
