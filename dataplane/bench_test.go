package dataplane

import (
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

// BenchmarkPipeline measures the per-packet worker path on established
// flows (decode, conntrack, rewrite, checksums, copy to the other UMEM)
// with an in-memory queue; ns/op is per packet.
func BenchmarkPipeline(b *testing.B) {
	_, w, up, down := newTestWorker(b, false)
	frames := [][]byte{fixture.Cases()[0].Frame, fixture.Cases()[2].Frame}
	for _, fr := range frames { // create the flows
		up.inject(fr)
	}
	w.pump(up)
	down.takeTx()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		up.inject(frames[i&1])
		i++
		if len(up.rx) == BatchSize {
			w.pump(up)
			down.complete()
		}
	}
}

// BenchmarkNewFlows is the same path when every packet starts a flow
// (Maglev pick and conntrack insert, with eviction once full).
func BenchmarkNewFlows(b *testing.B) {
	_, w, up, down := newTestWorker(b, false)
	udp := append([]byte(nil), fixture.Cases()[2].Frame...)
	b.ReportAllocs()
	var port uint16
	for b.Loop() {
		port++
		udp[34], udp[35] = byte(port>>8), byte(port)
		udp[26]++ // vary the client address too
		up.inject(udp)
		w.pump(up)
		down.complete()
	}
}
