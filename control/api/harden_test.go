package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Bug 10 of issue 9: a body with anything after its JSON value is refused
// with 400, and nothing is done with it.
func TestTrailingDataRefused(t *testing.T) {
	f := &fake{}
	_, path := serve(t, f)
	hc := &http.Client{Transport: &http.Transport{Dial: func(_, _ string) (net.Conn, error) { return net.Dial("unix", path) }}}
	for _, body := range []string{
		`{"vip":"10.0.100.1:80","proto":"tcp"} {"vip":"10.0.100.1:81","proto":"tcp"}`,
		`{"vip":"10.0.100.1:80","proto":"tcp"}garbage`,
		`{"vip":"10.0.100.1:80","proto":"tcp"}]`,
	} {
		resp, err := hc.Post("http://lb/v1/services", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: status %d, want 400", body, resp.StatusCode)
		}
	}
	if len(f.svcs) != 0 {
		t.Fatalf("a refused body created %v", f.svcs)
	}
	// Whitespace after the value is fine.
	resp, err := hc.Post("http://lb/v1/services", "application/json", strings.NewReader(`{"vip":"10.0.100.1:80","proto":"tcp"}`+"\n\n"))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("trailing newline: %v %v", resp.Status, err)
	}
	resp.Body.Close()
}

// endless is a dump session that never runs out of packets.
type endless struct{ closed chan struct{} }

func (e *endless) Next(ctx context.Context) (DumpPacket, error) {
	if ctx.Err() != nil {
		return DumpPacket{}, ctx.Err()
	}
	return DumpPacket{Time: time.Now(), Interface: "up0", Stage: "xdp", Verdict: "pass", OrigLen: 1500,
		Data: make([]byte, 1500)}, nil
}
func (e *endless) Close() error { close(e.closed); return nil }

type endlessFake struct {
	fake
	s *endless
}

func (f *endlessFake) StartDump(DumpRequest) (DumpSession, error) { return f.s, nil }

// Bug 13 of issue 9: a dump client that stops reading must not keep the
// one dump slot forever: a write that cannot proceed ends the session.
func TestStalledDumpReaderIsCut(t *testing.T) {
	defer func(d time.Duration) { dumpWriteTimeout = d }(dumpWriteTimeout)
	dumpWriteTimeout = 300 * time.Millisecond
	f := &endlessFake{s: &endless{closed: make(chan struct{})}}
	_, path := serve(t, f)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/dump?count=1000000&duration=1h HTTP/1.1\r\nHost: lb\r\n\r\n")
	// ... and never read.
	select {
	case <-f.s.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the dump session of a client that stopped reading is still open")
	}
}
