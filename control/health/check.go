package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// Check is how to probe a backend. Port 0 means the backend's own port.
type Check struct {
	Type     string        // "tcp", "http" or "udp"
	Port     uint16        //
	Path     string        // http: request path
	Status   int           // http: expected status code
	Payload  string        // udp: request payload; any answer is success
	Interval time.Duration //
	Timeout  time.Duration //
	Rise     int           // consecutive successes to become healthy
	Fall     int           // consecutive failures to become unhealthy
}

// Validate checks the parameters.
func (c Check) Validate() error {
	switch c.Type {
	case "tcp", "udp":
	case "http":
		if c.Status < 100 || c.Status > 599 {
			return fmt.Errorf("http check: expected status %d is not an HTTP status", c.Status)
		}
		if len(c.Path) == 0 || c.Path[0] != '/' {
			return fmt.Errorf("http check: path %q must start with /", c.Path)
		}
	default:
		return fmt.Errorf("check type %q: want tcp, http or udp", c.Type)
	}
	if c.Interval < 50*time.Millisecond || c.Timeout <= 0 || c.Timeout > c.Interval {
		return fmt.Errorf("check interval %s / timeout %s: want interval >= 50ms and 0 < timeout <= interval", c.Interval, c.Timeout)
	}
	if c.Rise < 1 || c.Fall < 1 {
		return fmt.Errorf("rise %d / fall %d: both must be >= 1", c.Rise, c.Fall)
	}
	return nil
}

// probe runs one check against addr and returns nil on success.
func probe(ctx context.Context, c Check, addr netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var d net.Dialer
	switch c.Type {
	case "tcp":
		conn, err := d.DialContext(ctx, network("tcp", addr), addr.String())
		if err != nil {
			return err
		}
		return conn.Close()
	case "http":
		return probeHTTP(ctx, c, addr)
	case "udp":
		conn, err := d.DialContext(ctx, network("udp", addr), addr.String())
		if err != nil {
			return err
		}
		defer conn.Close()
		deadline, _ := ctx.Deadline()
		conn.SetDeadline(deadline)
		if _, err := conn.Write([]byte(c.Payload)); err != nil {
			return err
		}
		// A connected UDP socket also reports ICMP port unreachable here.
		buf := make([]byte, 512)
		_, err = conn.Read(buf)
		return err
	}
	return errors.New("unknown check type")
}

// network pins the dial to the backend's family ("tcp4", "udp6", ...).
func network(proto string, addr netip.AddrPort) string {
	if addr.Addr().Is4() {
		return proto + "4"
	}
	return proto + "6"
}

func probeHTTP(ctx context.Context, c Check, addr netip.AddrPort) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+c.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "scmlb-xsk-health")
	resp, err := noKeepAlive.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != c.Status {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, c.Status)
	}
	return nil
}

// Each probe is a fresh connection: a kept-alive one would hide a server
// that stopped accepting.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
