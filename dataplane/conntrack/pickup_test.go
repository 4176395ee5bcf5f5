package conntrack

import (
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// Bug 11 of issue 9: a bare ACK (spoofed, or a flow picked up after a
// restart) must not hold an established entry for 15 minutes until the
// backend has answered.
func TestMidStreamEntryExpiresSoonUntilAnswered(t *testing.T) {
	tb := New(64, DefaultTimeouts)
	spoofed, sr := flow(1, 1)
	live, lr := flow(2, 2)
	tb.Insert(spoofed, sr, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagACK), 0, 0)
	tb.Insert(live, lr, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagACK), 0, 0)
	tb.Reply(lr, sg(flagACK), 0, 0) // the backend knows this one
	if n := tb.Expire(int64(2 * time.Minute)); n != 1 {
		t.Fatalf("expired %d flows after 2 minutes, want the unanswered mid-stream one", n)
	}
	if _, ok := tb.Forward(live, sg(flagACK), 0, int64(2*time.Minute)); !ok {
		t.Fatal("the answered flow expired")
	}
}

// Bug 11 of issue 9: one blind RST with a random sequence number must not
// end a live flow; an RST at the sequence the sender is at does.
func TestBlindRSTIgnored(t *testing.T) {
	tb := New(64, DefaultTimeouts)
	fwd, rev := flow(1, 1)
	c := &packet.Segment{Flags: flagSYN, WScale: 7, Win: 64240, Seq: 1000, Len: 1}
	tb.Insert(fwd, rev, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, c, 60, 0)
	tb.Reply(rev, &packet.Segment{Flags: flagSYN | flagACK, WScale: 7, Win: 65160, Seq: 5000, Len: 1}, 60, 0)
	tb.Forward(fwd, &packet.Segment{Flags: flagACK, WScale: packet.NoWScale, Win: 502, Seq: 1001}, 60, 0)
	// 10000 bytes from the backend; its next sequence number is 15001.
	tb.Reply(rev, &packet.Segment{Flags: flagACK, WScale: packet.NoWScale, Win: 509, Seq: 5001, Len: 10000}, 10060, 0)
	state := func() State { return tb.Entries(0)[0].State }
	if state() != Established {
		t.Fatalf("handshake: %v", state())
	}
	// The client's window is 502 << 7 = 64256 bytes around 15001.
	for _, seq := range []uint32{0xdeadbeef, 15001 + 200000, 15001 - 200000 + 1<<32, 15001 + 70000} {
		tb.Reply(rev, &packet.Segment{Flags: flagRST, WScale: packet.NoWScale, Seq: seq}, 40, 0)
		if state() != Established {
			t.Fatalf("RST with seq %d (outside the window) moved the flow to %v", seq, state())
		}
	}
	if got := tb.Counters().IgnoredRSTs; got != 4 {
		t.Fatalf("ignored RSTs counted %d, want 4", got)
	}
	// Later packets keep it established.
	tb.Forward(fwd, &packet.Segment{Flags: flagACK, WScale: packet.NoWScale, Win: 502, Seq: 1001}, 60, 0)
	if state() != Established {
		t.Fatalf("after the ignored RSTs: %v", state())
	}
	tb.Reply(rev, &packet.Segment{Flags: flagRST, WScale: packet.NoWScale, Seq: 15001 + 30000}, 40, 0)
	if state() != Closed {
		t.Fatalf("an in-window RST did not close the flow: %v", state())
	}
}

// A backend's packet can rebuild a flow the table lost (a daemon restart):
// the entry is established at once, both directions match.
func TestInsertFromReply(t *testing.T) {
	tb := New(64, DefaultTimeouts)
	fwd, rev := flow(3, 3)
	if !tb.Insert(fwd, rev, NewFlow{Backend: 9, ClientMAC: packet.MAC{1}, FromReply: true}, sg(flagACK), 1500, 0) {
		t.Fatal("insert from a reply failed")
	}
	if e := tb.Entries(0)[0]; e.State != Established || e.Backend != 9 {
		t.Fatalf("%+v", e)
	}
	if h, ok := tb.Forward(fwd, sg(flagACK), 60, 1); !ok || h.Backend != 9 || h.ClientMAC != (packet.MAC{1}) {
		t.Fatalf("forward after a reply insert: %+v %v", h, ok)
	}
}

// A DSR flow never shows the backend: the client's ACK after its SYN
// establishes it, and removal hooks see every entry that goes.
func TestOneWayAndOnRemove(t *testing.T) {
	tb := New(64, DefaultTimeouts)
	var removed []uint32
	tb.OnRemove(func(e *Entry) { removed = append(removed, e.Backend) })
	fwd, rev := flow(1, 1)
	tb.Insert(fwd, rev, NewFlow{Backend: 4, OneWay: true}, sg(flagSYN), 60, 0)
	tb.Forward(fwd, sg(flagACK), 60, 0)
	if e := tb.Entries(0)[0]; e.State != Established || !e.OneWay {
		t.Fatalf("%+v", e)
	}
	e, ok := tb.Lookup(rev, true)
	if !ok || e.Backend != 4 || e.Packets != 2 {
		t.Fatalf("lookup by the reply tuple: %+v %v", e, ok)
	}
	if _, ok := tb.Lookup(fwd, true); ok {
		t.Fatal("the forward tuple found as a reply")
	}
	tb.Insert(fwd, rev, NewFlow{Backend: 5}, sg(flagSYN), 60, 0) // the client port reused
	if len(removed) != 1 || removed[0] != 4 {
		t.Fatalf("removed %v", removed)
	}
	tb.Expire(int64(time.Hour))
	if len(removed) != 2 || removed[1] != 5 {
		t.Fatalf("removed %v after expiry", removed)
	}
}
