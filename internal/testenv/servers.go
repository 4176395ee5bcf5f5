package testenv

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Ports the lab backends serve on.
const (
	HTTPPort = 80   // GET /who answers the backend name; GET /peer the client address it sees; GET /bytes?n=N[&rate=B] sends Payload(N) at B bytes/s; POST /sha256 answers "LEN HEX"
	TCPPort  = 3306 // writes the backend name and a newline, then echoes lines
	UDPPort  = 9090 // answers "name:payload"; "blast N" gets N datagrams
)

// BackendServer is the set of lab servers of one backend.
type BackendServer struct {
	ns     *NS
	name   string
	mu     sync.Mutex
	srv    *http.Server
	closer []io.Closer // TCP and UDP listeners of both families
	active bool
}

// ServeBackend runs the lab servers inside ns until cleanup.
func ServeBackend(c Cleaner, ns *NS, name string) (*BackendServer, error) {
	b := &BackendServer{ns: ns, name: name}
	if err := b.Start(); err != nil {
		return nil, err
	}
	c.Cleanup(b.Stop)
	return b, nil
}

// Start (re)opens the listeners.
func (b *BackendServer) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active {
		return nil
	}
	// IPv4 and IPv6 listeners apart ("tcp6" is IPv6-only): an IPv4 socket
	// on a DSR VIP can then share the port with the IPv4 wildcard alone.
	var hl, tl, ul [2]io.Closer
	var closers []io.Closer
	err := b.ns.Do(func() error {
		for i, fam := range []string{"4", "6"} {
			h, err := net.Listen("tcp"+fam, fmt.Sprintf(":%d", HTTPPort))
			if err != nil {
				return err
			}
			closers, hl[i] = append(closers, h), h
			l, err := net.Listen("tcp"+fam, fmt.Sprintf(":%d", TCPPort))
			if err != nil {
				return err
			}
			closers, tl[i] = append(closers, l), l
			u, err := reuseAddr.ListenPacket(context.Background(), "udp"+fam, fmt.Sprintf(":%d", UDPPort))
			if err != nil {
				return err
			}
			closers, ul[i] = append(closers, u), u
		}
		return nil
	})
	if err != nil {
		for _, c := range closers {
			c.Close()
		}
		return fmt.Errorf("backend %s listen: %w", b.name, err)
	}
	name := b.name
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) })
	mux.HandleFunc("/bytes", serveBytes)
	mux.HandleFunc("/peer", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.RemoteAddr) })
	mux.HandleFunc("/sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	b.closer, b.active = closers, true
	for i := range 2 {
		go b.srv.Serve(hl[i].(net.Listener))
		go acceptLoop(tl[i].(net.Listener), name)
		go udpLoop(ul[i].(net.PacketConn), name)
	}
	return nil
}

// reuseAddr lets a socket on a specific address share the port with the
// wildcard one (both must ask).
var reuseAddr = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) })
	return errors.Join(err, serr)
}}

// ServeUDPOn answers on addr:UDPPort too, until cleanup: a DSR backend
// holds the VIP and must answer from it, which a socket bound to the
// wildcard address does not (its replies take the route's source address).
func (b *BackendServer) ServeUDPOn(c Cleaner, addr netip.Addr) error {
	var ul net.PacketConn
	err := b.ns.Do(func() error {
		var err error
		ul, err = reuseAddr.ListenPacket(context.Background(), network("udp", addr), netip.AddrPortFrom(addr, UDPPort).String())
		return err
	})
	if err != nil {
		return fmt.Errorf("backend %s listen on %s: %w", b.name, addr, err)
	}
	go udpLoop(ul, b.name)
	c.Cleanup(func() { ul.Close() })
	return nil
}

// Stop closes the listeners, as if the server process died: new
// connections are refused and UDP gets port unreachable.
func (b *BackendServer) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.active {
		return
	}
	b.srv.Close()
	for _, c := range b.closer {
		c.Close()
	}
	b.active = false
}

func acceptLoop(l net.Listener, name string) {
	Serve(l, func(c net.Conn) {
		fmt.Fprintf(c, "%s\n", name)
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := c.Write([]byte(line)); err != nil {
				return
			}
		}
	})
}

// Serve accepts connections on l until it is closed, handling each with fn
// in its own goroutine and closing it afterwards.
func Serve(l net.Listener, fn func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			fn(c)
		}()
	}
}

// udpLoop answers "name:payload"; a payload "blast N" (N <= 1000) is
// answered with N datagrams "name:blast i", so one client packet makes the
// backend send many (a test of filters against backend replies).
func udpLoop(c net.PacketConn, name string) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		var count int
		if _, err := fmt.Sscanf(string(buf[:n]), "blast %d", &count); err == nil && count > 0 && count <= 1000 {
			for i := 0; i < count; i++ {
				c.WriteTo([]byte(fmt.Sprintf("%s:blast %d", name, i)), from)
			}
			continue
		}
		c.WriteTo(append([]byte(name+":"), buf[:n]...), from)
	}
}

// DialContext dials from inside the namespace (for http.Transport).
func (n *NS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// DialNoKeepAlive dials like DialContext with TCP keepalive off, as curl
// and most clients have it: a keepalive probe would be a client packet that
// a test about silent clients must not get for free (Go sends one after 15s).
func (n *NS) DialNoKeepAlive(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := n.Do(func() error {
		d := net.Dialer{KeepAlive: -1}
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// HTTPClient returns a client that opens a new connection (a new flow) for
// every request, from inside the namespace.
func (n *NS) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true}}
}

// UDPRequest sends payload to addr from inside the namespace and returns the answer.
func (n *NS) UDPRequest(addr, payload string, timeout time.Duration) (string, error) {
	conn, err := n.DialContext(context.Background(), "udp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte(payload)); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	k, err := conn.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:k]), nil
}

// ErrNotReady is returned by WaitFor when the condition never held.
var ErrNotReady = errors.New("not ready")

// WaitFor polls fn every 100ms until it succeeds or timeout passes.
func WaitFor(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %s: %v", ErrNotReady, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Payload is the body of GET /bytes?n=N: n bytes of a fixed pseudo-random
// sequence, so a download's sha256 tells whether every byte arrived in order.
func Payload(n int) []byte {
	out := make([]byte, n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range out {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		out[i] = byte(x)
	}
	return out
}

// serveBytes sends Payload(n), paced at rate bytes/s when given: the pacing
// is in the server's writes, so the transfer stays on the wire for as long
// as a test needs it to (kernel buffers cannot absorb it ahead of time).
func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 0 || n > 1<<30 {
		http.Error(w, "n: want 0 to 1GiB", http.StatusBadRequest)
		return
	}
	rate, _ := strconv.Atoi(r.URL.Query().Get("rate"))
	body := Payload(n)
	w.Header().Set("Content-Length", strconv.Itoa(n))
	const chunk = 16 << 10
	start := time.Now()
	for off := 0; off < n; off += chunk {
		if _, err := w.Write(body[off:min(off+chunk, n)]); err != nil {
			return
		}
		if rate > 0 {
			if ahead := time.Duration(float64(off+chunk)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
}

// network is proto for addr's family: "udp4", "tcp6", ...
func network(proto string, addr netip.Addr) string {
	if addr.Is4() {
		return proto + "4"
	}
	return proto + "6"
}
