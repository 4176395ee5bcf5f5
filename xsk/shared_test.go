package xsk_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
	"github.com/scmlb-xsk/scmlb-xsk/xsk"
)

// Veth has no AF_XDP zero-copy: the socket asks for it, is refused, and
// runs in copy mode, saying why; need_wakeup is on either way.
func TestZeroCopyFallsBackToCopy(t *testing.T) {
	sock, _, _ := steeredSocket(t, xsk.Options{NumFrames: 64, FrameSize: 2048, RingSize: 32})
	zc, why := sock.ZeroCopy()
	if zc || why == "" {
		t.Fatalf("veth socket: zero-copy %v (refusal %q)", zc, why)
	}
	if !sock.NeedWakeup() {
		t.Fatal("need_wakeup is off")
	}
	t.Logf("zero-copy refused: %s", why)
}

// A worker's two sockets share one UMEM: a frame received on one NIC is
// transmitted on the other from the same memory, and after 200 frames
// every frame of the UMEM is accounted for exactly once.
func TestSharedUMEMForwardsWithoutCopy(t *testing.T) {
	const n = 200
	o := xsk.Options{NumFrames: 128, FrameSize: 2048, RingSize: 32}
	in, a, b := steeredSocketNS(t, o)
	u := in.UMEM()
	// A second NIC in the same namespace: w0, its peer w1 in namespace c.
	c, err := testenv.NewNS(t, testenv.UniquePrefix()+"-c")
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.Veth(a, "w0", c, "w1"); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"addr", "add", "10.8.0.1/24", "dev", "w0"}, {"link", "set", "w0", "up"}} {
		if _, err := a.IP(cmd...); err != nil {
			t.Fatal(err)
		}
	}
	for _, cmd := range [][]string{{"addr", "add", "10.8.0.2/24", "dev", "w1"}, {"link", "set", "w1", "up"}} {
		if _, err := c.IP(cmd...); err != nil {
			t.Fatal(err)
		}
	}
	var w0, w1 *net.Interface
	var out *xsk.Socket
	if err := a.Do(func() error {
		if w0, err = net.InterfaceByName("w0"); err != nil {
			return err
		}
		out, err = u.Open(w0.Index, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	if err := c.Do(func() error { w1, err = net.InterfaceByName("w1"); return err }); err != nil {
		t.Fatal(err)
	}
	if out.UMEMID() != in.UMEMID() || out.ShareError() != "" {
		t.Fatalf("second socket does not share the UMEM: %q", out.ShareError())
	}
	var listener *net.UDPConn
	if err := c.Do(func() error {
		listener, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 8, 0, 2), Port: 7777})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	got := make(chan int, 1)
	go func() {
		buf := make([]byte, 64)
		k := 0
		listener.SetReadDeadline(time.Now().Add(10 * time.Second))
		for k < n {
			if _, _, err := listener.ReadFromUDP(buf); err != nil {
				break
			}
			k++
		}
		got <- k
	}()
	// The sender paces itself so a 32-slot ring never overflows while this
	// goroutine forwards (the socket belongs to one goroutine).
	sent := make(chan error, 1)
	go func() {
		sent <- b.Do(func() error {
			conn, err := net.Dial("udp4", "10.9.0.1:9999")
			if err != nil {
				return err
			}
			defer conn.Close()
			for i := 0; i < n; i++ {
				conn.Write([]byte("through"))
				time.Sleep(200 * time.Microsecond)
			}
			return nil
		})
	}()
	free := u.FreeFrames()
	batch := make([]xsk.Desc, 16)
	fwd := 0
	for deadline := time.Now().Add(5 * time.Second); fwd < n && time.Now().Before(deadline); {
		unix.Poll([]unix.PollFd{{Fd: int32(in.FD()), Events: unix.POLLIN}}, 10)
		k := in.Receive(batch)
		for _, d := range batch[:k] {
			// Rewrite in place and send the very same frame out of w0.
			chunk, off := in.Buffer(d)
			f := fixture.Frame{SrcMAC: [6]byte(w0.HardwareAddr), DstMAC: [6]byte(w1.HardwareAddr),
				Src: netip.MustParseAddr("10.8.0.1"), Dst: netip.MustParseAddr("10.8.0.2"),
				Proto: fixture.ProtoUDP, SrcPort: 9999, DstPort: 7777, Payload: []byte("through")}.Bytes()
			copy(chunk[off:], f)
			if !out.Transmit(d.Addr, len(f)) {
				t.Fatal("tx ring full")
			}
			fwd++
		}
		out.Flush()
		in.Flush()
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if k := <-got; k != n || fwd != n {
		t.Fatalf("forwarded %d, peer received %d of %d", fwd, k, n)
	}
	if c := in.Counters(); c.NoFrame != 0 || u.FreeFrames() > free+o.NumFrames {
		t.Fatalf("counters %+v", c)
	}
	// Completions come back to the shared pool: every frame accounted for.
	if err := testenv.WaitFor(2*time.Second, func() error {
		out.Flush()
		in.Flush()
		return u.Audit()
	}); err != nil {
		t.Fatal(err)
	}
	if c := out.Counters(); c.TxPackets != n || c.Kicks == 0 {
		t.Fatalf("output socket counters %+v", c)
	}
}
