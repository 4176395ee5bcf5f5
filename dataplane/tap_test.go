package dataplane

import (
	"bytes"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

func drain(t *Tap) []*Captured {
	var out []*Captured
	for {
		select {
		case c := <-t.C():
			out = append(out, c)
		default:
			return out
		}
	}
}

func TestTapRecordsVerdicts(t *testing.T) {
	e, w, up, down := newTestWorker(t, false)
	tap := NewTap(TapFilter{}, 64, 8)
	e.SetTap(tap)
	up.inject(fixture.Cases()[0].Frame) // forwarded
	up.inject(fixture.Cases()[6].Frame) // vip:22, no flow
	w.pump(up)
	got := drain(tap)
	if len(got) != 2 {
		t.Fatalf("captured %d", len(got))
	}
	fwd := down.takeTx()[0]
	if got[0].Verdict != "forward" || got[0].Side != SideBackend || !bytes.Equal(got[0].Data, fwd[:min(64, len(fwd))]) || got[0].Len != len(fwd) {
		t.Fatalf("forward capture %+v", got[0])
	}
	if got[1].Verdict != "drop:no_flow" || got[1].Side != SideUpstream {
		t.Fatalf("drop capture %+v", got[1])
	}
	for _, c := range got {
		tap.Release(c)
	}

	e.SetTap(nil)
	up.inject(fixture.Cases()[0].Frame)
	w.pump(up)
	if len(drain(tap)) != 0 {
		t.Fatal("captured after SetTap(nil)")
	}
}

func TestTapFilterAndMissed(t *testing.T) {
	e, w, up, _ := newTestWorker(t, false)
	tap := NewTap(TapFilter{Port: fixture.UDPPort, Proto: packet.ProtoUDP}, 64, 1)
	e.SetTap(tap)
	up.inject(fixture.Cases()[0].Frame)  // tcp 80: filtered out
	up.inject(fixture.Cases()[2].Frame)  // udp 9090: captured
	up.inject(fixture.Cases()[3].Frame)  // udp 9090: no free buffer
	up.inject(fixture.Cases()[10].Frame) // arp: not decoded, filter not empty
	w.pump(up)
	if got := drain(tap); len(got) != 1 || tap.Missed() != 1 {
		t.Fatalf("captured %d, missed %d", len(got), tap.Missed())
	}
}

func TestTapNoAllocs(t *testing.T) {
	e, w, up, down := newTestWorker(t, false)
	tap := NewTap(TapFilter{}, 128, 4)
	e.SetTap(tap)
	frame := fixture.Cases()[0].Frame
	if n := testing.AllocsPerRun(1000, func() {
		up.inject(frame)
		w.pump(up)
		down.complete()
		// Not drain: its slice is the test's allocation, which the race
		// detector's build puts on the heap.
		for {
			select {
			case c := <-tap.C():
				tap.Release(c)
				continue
			default:
			}
			break
		}
	}); n != 0 {
		t.Fatalf("%v allocations per packet with a tap", n)
	}
}
