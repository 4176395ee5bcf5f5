package conntrack

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

var (
	vip     = packet.Addr4([]byte{10, 0, 100, 1})
	backend = packet.Addr4([]byte{10, 0, 2, 11})
)

func flow(client uint32, port uint16) (fwd, rev packet.Tuple) {
	c := packet.Addr4([]byte{10, byte(client >> 16), byte(client >> 8), byte(client)})
	fwd = packet.Tuple{Src: c, Dst: vip, SrcPort: port, DstPort: 80, Proto: packet.ProtoTCP}
	rev = packet.Tuple{Src: backend, Dst: c, SrcPort: 8080, DstPort: port, Proto: packet.ProtoTCP}
	return
}

func TestBothDirections(t *testing.T) {
	tb := New(1024, DefaultTimeouts)
	fwd, rev := flow(1, 40000)
	mac := packet.MAC{2, 0, 0, 0, 0, 9}
	if !tb.Insert(fwd, rev, NewFlow{Backend: 7, ClientMAC: mac}, sg(flagSYN), 60, 1) {
		t.Fatal("insert failed")
	}
	h, ok := tb.Forward(fwd, sg(flagACK), 60, 2)
	if !ok || h.Backend != 7 || h.VIP != vip || h.VIPPort != 80 {
		t.Fatalf("forward hit %+v %v", h, ok)
	}
	h, ok = tb.Reply(rev, sg(flagACK), 60, 3)
	if !ok || h.ClientMAC != mac || h.VIP != vip || h.Backend != 7 {
		t.Fatalf("reply hit %+v %v", h, ok)
	}
	if _, ok := tb.Reply(fwd, sg(0), 0, 3); ok {
		t.Fatal("forward tuple must not match as a reply")
	}
}

func TestTCPStates(t *testing.T) {
	tb := New(64, DefaultTimeouts)
	fwd, rev := flow(1, 1)
	tb.Insert(fwd, rev, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagSYN), 0, 0)
	steps := []struct {
		reply bool
		flags uint8
		want  State
	}{
		{true, flagSYN | flagACK, SynRecv},
		{false, flagACK, Established},
		{false, flagFIN | flagACK, Closing},
		{true, flagFIN | flagACK, Closed},
	}
	for _, s := range steps {
		if s.reply {
			tb.Reply(rev, sg(s.flags), 0, 0)
		} else {
			tb.Forward(fwd, sg(s.flags), 0, 0)
		}
		if got := tb.Entries(0)[0].State; got != s.want {
			t.Fatalf("after flags %#x: %v want %v", s.flags, got, s.want)
		}
	}
}

func TestExpireByState(t *testing.T) {
	tb := New(64, DefaultTimeouts)
	a, ar := flow(1, 1)
	b, br := flow(2, 2)
	tb.Insert(a, ar, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagSYN), 0, 0)
	tb.Insert(b, br, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagSYN), 0, 0)
	tb.Reply(br, sg(flagSYN|flagACK), 0, 0)
	tb.Forward(b, sg(flagACK), 0, 0) // established: 15 min
	if n := tb.Expire(int64(time.Minute)); n != 1 {
		t.Fatalf("expired %d, want only the SYN_SENT flow", n)
	}
	if _, ok := tb.Forward(b, sg(flagACK), 0, int64(time.Minute)); !ok {
		t.Fatal("established flow expired")
	}
	if tb.Len() != 1 || tb.Counters().Expired != 1 {
		t.Fatalf("len %d counters %+v", tb.Len(), tb.Counters())
	}
}

func TestBoundedWithEviction(t *testing.T) {
	tb := New(numShards*4, DefaultTimeouts)
	for i := range 10000 {
		fwd, rev := flow(uint32(i), uint16(i))
		if !tb.Insert(fwd, rev, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagSYN), 0, int64(i)) {
			t.Fatal("insert refused")
		}
	}
	if tb.Len() != numShards*4 {
		t.Fatalf("len %d, want capacity %d", tb.Len(), numShards*4)
	}
	if tb.Counters().Evictions != 10000-numShards*4 {
		t.Fatalf("evictions %d", tb.Counters().Evictions)
	}
	// The newest flow must still be there.
	fwd, _ := flow(9999, 9999)
	if _, ok := tb.Forward(fwd, sg(0), 0, 0); !ok {
		t.Fatal("newest flow was evicted")
	}
}

func TestCollision(t *testing.T) {
	tb := New(64, DefaultTimeouts)
	fwd, rev := flow(1, 1)
	tb.Insert(fwd, rev, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagSYN), 0, 0)
	other := fwd
	other.Dst = packet.Addr4([]byte{10, 0, 100, 2}) // another VIP, same backend and client port
	if tb.Insert(other, rev, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagSYN), 0, 0) {
		t.Fatal("a second flow with the same reply tuple was accepted")
	}
	if tb.Counters().Collisions != 1 {
		t.Fatal("collision not counted")
	}
}

// TestIndexAgainstModel runs random inserts, lookups and expiries against a
// plain map so probe-run deletion bugs show up.
func TestIndexAgainstModel(t *testing.T) {
	tb := New(numShards*64, Timeouts{Established: 1, SynSent: 1, UDP: 1, Closing: 1, Closed: 1, SynRecv: 1})
	model := map[packet.Tuple]packet.Tuple{}
	r := rand.New(rand.NewPCG(3, 4))
	for step := range 200000 {
		fwd, rev := flow(r.Uint32N(3000), 1)
		switch r.IntN(3) {
		case 0:
			if len(model) < numShards*32 { // stay below capacity: no eviction here
				tb.Insert(fwd, rev, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagSYN), 0, int64(step))
				model[fwd] = rev
			}
		case 1:
			_, ok := tb.Forward(fwd, sg(0), 0, int64(step))
			_, rok := tb.Reply(rev, sg(0), 0, int64(step))
			_, want := model[fwd]
			if ok != want || rok != want {
				t.Fatalf("step %d: found %v/%v, model %v", step, ok, rok, want)
			}
		case 2:
			if r.IntN(50) == 0 {
				tb.Expire(int64(step) + 10)
				clear(model)
			}
		}
	}
}

func TestNoAllocs(t *testing.T) {
	tb := New(numShards*16, DefaultTimeouts)
	i := 0
	if n := testing.AllocsPerRun(10000, func() {
		i++
		fwd, rev := flow(uint32(i), uint16(i))
		tb.Insert(fwd, rev, NewFlow{Backend: 1, ClientMAC: packet.MAC{}}, sg(flagSYN), 60, int64(i)) // evicts once full
		tb.Forward(fwd, sg(flagACK), 60, int64(i))
		tb.Reply(rev, sg(flagACK), 60, int64(i))
	}); n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
}

func TestListingAndActiveCounts(t *testing.T) {
	tb := New(1024, DefaultTimeouts)
	for i := range 10 {
		fwd, rev := flow(uint32(i), uint16(i))
		tb.Insert(fwd, rev, NewFlow{Backend: uint32(1 + i%2), ClientMAC: packet.MAC{}}, sg(flagSYN), 0, 0)
	}
	fwd, _ := flow(0, 0)
	tb.Forward(fwd, sg(flagRST), 0, 0) // closed: not active
	if n := len(tb.Entries(3)); n != 3 {
		t.Fatalf("Entries(3) returned %d", n)
	}
	if n := len(tb.Entries(0)); n != 10 {
		t.Fatalf("Entries(0) returned %d", n)
	}
	if a := tb.ActiveByBackend(); a[1] != 4 || a[2] != 5 {
		t.Fatalf("active by backend %v", a)
	}
	if tb.Capacity() != 1024 {
		t.Fatalf("capacity %d", tb.Capacity())
	}
}

// sg is a TCP segment with only flags set (sequence numbers 0).
func sg(flags uint8) *packet.Segment {
	return &packet.Segment{Flags: flags, WScale: packet.NoWScale}
}
