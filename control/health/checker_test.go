package health

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

type events struct {
	mu sync.Mutex
	ev []bool
}

func (e *events) add(_ uint32, healthy bool) {
	e.mu.Lock()
	e.ev = append(e.ev, healthy)
	e.mu.Unlock()
}
func (e *events) get() []bool { e.mu.Lock(); defer e.mu.Unlock(); return append([]bool(nil), e.ev...) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

var quick = Check{Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 2, Fall: 3}

func TestTCPFallAndRise(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(l.Addr().String())
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var ev events
	c := NewChecker(zap.NewNop(), ev.add)
	defer c.Close()
	chk := quick
	chk.Type = "tcp"
	c.Sync([]Target{{ID: 1, Addr: addr, Check: chk}})
	time.Sleep(200 * time.Millisecond)
	if st, ok := c.Status(1); !ok || !st.Healthy || len(ev.get()) != 0 {
		t.Fatalf("healthy backend: %+v %v events %v", st, ok, ev.get())
	}
	l.Close()
	start := time.Now()
	waitFor(t, "unhealthy", func() bool { return !c.Healthy(1) })
	// fall x interval = 150ms, plus up to one interval of phase.
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("took %s to mark unhealthy", d)
	}
	if st, _ := c.Status(1); !strings.Contains(st.LastError, "refused") {
		t.Errorf("last error %q", st.LastError)
	}
	l2, err := net.Listen("tcp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go func() {
		for {
			c, err := l2.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	waitFor(t, "healthy again", func() bool { return c.Healthy(1) })
	if got := ev.get(); len(got) != 2 || got[0] || !got[1] {
		t.Fatalf("events %v, want [false true]", got)
	}
}

func TestHTTPStatus(t *testing.T) {
	status := 200
	var mu sync.Mutex
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/healthz" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(status)
	})}
	l, _ := net.Listen("tcp4", "127.0.0.1:0")
	go srv.Serve(l)
	defer srv.Close()
	c := NewChecker(zap.NewNop(), func(uint32, bool) {})
	defer c.Close()
	chk := quick
	chk.Type, chk.Path, chk.Status = "http", "/healthz", 200
	c.Sync([]Target{{ID: 7, Addr: netip.MustParseAddrPort(l.Addr().String()), Check: chk}})
	time.Sleep(150 * time.Millisecond)
	if !c.Healthy(7) {
		t.Fatal("200 marked unhealthy")
	}
	mu.Lock()
	status = 503
	mu.Unlock()
	waitFor(t, "503 unhealthy", func() bool { return !c.Healthy(7) })
	if st, _ := c.Status(7); !strings.Contains(st.LastError, "status 503, want 200") {
		t.Fatalf("last error %q", st.LastError)
	}
}

func TestUDPRequestResponse(t *testing.T) {
	pc, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	go echoUDP(pc)
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())
	c := NewChecker(zap.NewNop(), func(uint32, bool) {})
	defer c.Close()
	chk := quick
	chk.Type, chk.Payload = "udp", "ping"
	c.Sync([]Target{{ID: 2, Addr: addr, Check: chk}})
	time.Sleep(150 * time.Millisecond)
	if !c.Healthy(2) {
		t.Fatal("answering UDP server unhealthy")
	}
	pc.Close() // now ICMP port unreachable
	waitFor(t, "udp unhealthy", func() bool { return !c.Healthy(2) })
	// Removing the target stops its probes and its status.
	c.Sync(nil)
	if _, ok := c.Status(2); ok || !c.Healthy(2) {
		t.Fatal("removed target still has a status")
	}
}

func TestValidate(t *testing.T) {
	good := Check{Type: "http", Path: "/", Status: 200, Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mut  func(*Check)
		want string
	}{
		{func(c *Check) { c.Type = "icmp" }, "want tcp, http or udp"},
		{func(c *Check) { c.Status = 42 }, "not an HTTP status"},
		{func(c *Check) { c.Path = "healthz" }, "must start with /"},
		{func(c *Check) { c.Timeout = 2 * time.Second }, "timeout <= interval"},
		{func(c *Check) { c.Interval = time.Millisecond }, "interval >= 50ms"},
		{func(c *Check) { c.Fall = 0 }, "must be >= 1"},
	} {
		chk := good
		c.mut(&chk)
		if err := chk.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", chk, err, c.want)
		}
	}
}

// Every check type probes an IPv6 backend ([::1] here) over IPv6.
func TestIPv6Backends(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatalf("no IPv6 loopback: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })}
	go srv.Serve(l)
	defer srv.Close()
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go echoUDP(pc)
	c := NewChecker(zap.NewNop(), func(uint32, bool) {})
	defer c.Close()
	tcp, web, udp := quick, quick, quick
	tcp.Type = "tcp"
	web.Type, web.Path, web.Status = "http", "/", 204
	udp.Type, udp.Payload = "udp", "ping"
	tcpAddr := netip.MustParseAddrPort(l.Addr().String())
	c.Sync([]Target{{ID: 1, Addr: tcpAddr, Check: tcp}, {ID: 2, Addr: tcpAddr, Check: web},
		{ID: 3, Addr: netip.MustParseAddrPort(pc.LocalAddr().String()), Check: udp}})
	// Backends start healthy: they must still be after several probes...
	time.Sleep(300 * time.Millisecond)
	for id := uint32(1); id <= 3; id++ {
		if st, ok := c.Status(id); !ok || !st.Healthy || st.LastError != "" {
			t.Fatalf("IPv6 target %d: %+v", id, st)
		}
	}
	// ...and go down when the servers do, so the probes reach them.
	srv.Close()
	pc.Close()
	for id := uint32(1); id <= 3; id++ {
		waitFor(t, "IPv6 backend down", func() bool { return !c.Healthy(id) })
	}
}

// echoUDP answers every datagram with itself until pc is closed.
func echoUDP(pc net.PacketConn) {
	buf := make([]byte, 64)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(buf[:n], from)
	}
}
