package api

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/control/config"
)

// DumpRequest selects what a dump captures and bounds it.
type DumpRequest struct {
	At       string        // "xdp", "worker" or "both"
	Host     netip.Addr    // source or destination; invalid: any
	Port     uint16        // source or destination; 0: any
	Proto    string        // "", tcp, udp or icmp
	Count    int           // stop after this many packets
	Duration time.Duration // stop after this long
	Snaplen  int           // bytes kept per packet
}

// Dump limits.
const (
	MaxDumpCount    = 1000000
	MaxDumpDuration = time.Hour
)

// DumpSession yields captured packets until its bounds are reached.
type DumpSession interface {
	// Next returns the next packet, or io.EOF when the count or duration
	// is reached.
	Next(ctx context.Context) (DumpPacket, error)
	Close() error
}

func (r DumpRequest) values() url.Values {
	v := url.Values{"at": {r.At}, "count": {strconv.Itoa(r.Count)}, "duration": {r.Duration.String()},
		"snaplen": {strconv.Itoa(r.Snaplen)}, "proto": {r.Proto}, "port": {strconv.Itoa(int(r.Port))}}
	if r.Host.IsValid() {
		v.Set("host", r.Host.String())
	}
	return v
}

// parseDumpRequest reads and checks the query of GET /v1/dump.
func parseDumpRequest(q url.Values) (DumpRequest, error) {
	bad := func(format string, a ...any) (DumpRequest, error) {
		return DumpRequest{}, fmt.Errorf("%w: "+format, append([]any{config.ErrInvalid}, a...)...)
	}
	r := DumpRequest{At: q.Get("at"), Proto: q.Get("proto"), Count: 100, Duration: 10 * time.Second, Snaplen: 2048}
	switch r.At {
	case "":
		r.At = "both"
	case "xdp", "worker", "both":
	default:
		return bad("at %q: want xdp, worker or both", r.At)
	}
	switch r.Proto {
	case "", "any", "tcp", "udp", "icmp", "icmpv6":
	default:
		return bad("protocol %q: want tcp, udp, icmp or icmpv6", r.Proto)
	}
	if h := q.Get("host"); h != "" {
		a, err := netip.ParseAddr(h)
		if err != nil || a.Zone() != "" {
			return bad("host %q: want an IPv4 or IPv6 address", h)
		}
		r.Host = a.Unmap()
	}
	var err error
	if p := q.Get("port"); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return bad("port %q", p)
		}
		r.Port = uint16(n)
	}
	if c := q.Get("count"); c != "" {
		if r.Count, err = strconv.Atoi(c); err != nil || r.Count < 1 || r.Count > MaxDumpCount {
			return bad("count %q: want 1 to %d", c, MaxDumpCount)
		}
	}
	if d := q.Get("duration"); d != "" {
		if r.Duration, err = time.ParseDuration(d); err != nil || r.Duration <= 0 || r.Duration > MaxDumpDuration {
			return bad("duration %q: want up to %s", d, MaxDumpDuration)
		}
	}
	if s := q.Get("snaplen"); s != "" {
		if r.Snaplen, err = strconv.Atoi(s); err != nil || r.Snaplen < 64 || r.Snaplen > 65535 {
			return bad("snaplen %q: want 64 to 65535", s)
		}
	}
	return r, nil
}

// dumpWriteTimeout bounds each write of a dump stream: a client that stops
// reading loses the session (and its one slot) instead of holding it.
var dumpWriteTimeout = 10 * time.Second

// serveDump streams a pcapng capture until the session ends or the client
// goes away or stops reading.
func serveDump(c Controller, w http.ResponseWriter, r *http.Request) {
	req, err := parseDumpRequest(r.URL.Query())
	if err != nil {
		reply(w, nil, err)
		return
	}
	s, err := c.StartDump(req)
	if err != nil {
		reply(w, nil, err)
		return
	}
	defer s.Close()
	w.Header().Set("Content-Type", "application/x-pcapng")
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(dumpWriteTimeout))
	pw, err := NewPcapngWriter(w, req.Snaplen)
	if err != nil {
		return
	}
	for {
		if rc.Flush() != nil {
			return
		}
		p, err := s.Next(r.Context())
		if err != nil {
			return // EOF at the bounds, or the client left
		}
		rc.SetWriteDeadline(time.Now().Add(dumpWriteTimeout))
		if pw.Write(p) != nil {
			return
		}
	}
}

// Summary is a one-line description of an Ethernet frame for live output.
func Summary(data []byte) string {
	if len(data) < 14 {
		return "truncated"
	}
	ip := data[14:]
	var src, dst netip.Addr
	var proto byte
	var l4 []byte
	switch et := binary.BigEndian.Uint16(data[12:]); et {
	case 0x0800:
		if len(ip) < 20 {
			return "ipv4 truncated"
		}
		src, dst, proto = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])), ip[9]
		l4 = ip[min(int(ip[0]&0x0f)*4, len(ip)):]
	case 0x86dd:
		if len(ip) < 40 {
			return "ipv6 truncated"
		}
		// Extension headers are named, not walked: the summary is for eyes.
		src, dst, proto, l4 = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40])), ip[6], ip[40:]
	default:
		return fmt.Sprintf("ethertype %#04x", et)
	}
	switch proto {
	case 6, 17:
		if len(l4) < 4 {
			break
		}
		sp, dp := binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		s := fmt.Sprintf("%s > %s", netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp))
		if proto == 17 {
			return s + " udp"
		}
		if len(l4) >= 14 {
			return s + " tcp " + tcpFlags(l4[13])
		}
		return s + " tcp"
	case 1:
		return fmt.Sprintf("%s > %s icmp", src, dst)
	case 58:
		if len(l4) >= 1 {
			return fmt.Sprintf("%s > %s icmpv6 type %d", src, dst, l4[0])
		}
	}
	return fmt.Sprintf("%s > %s proto %d", src, dst, proto)
}

func tcpFlags(f byte) string {
	s := "["
	for i, c := range "FSRPAU" {
		if f&(1<<i) != 0 {
			s += string(c)
		}
	}
	return s + "]"
}
