package dataplane

import (
	"reflect"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
)

// A record is two whole cache lines and holds no pointer: a worker's
// records are not scanned by the GC.
func TestXrecLayout(t *testing.T) {
	if n := unsafe.Sizeof(xrec{}); n != 128 {
		t.Fatalf("a record is %d bytes, want 128", n)
	}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		switch ty.Kind() {
		case reflect.Struct:
			for i := range ty.NumField() {
				walk(ty.Field(i).Type, path+"."+ty.Field(i).Name)
			}
		case reflect.Array:
			walk(ty.Elem(), path+"[]")
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.String, reflect.Interface, reflect.Func, reflect.Chan,
			reflect.UnsafePointer:
			t.Fatalf("xrec%s is a %s", path, ty.Kind())
		}
	}
	walk(reflect.TypeOf(xrec{}), "")
}

// recordsWorker is a worker with records over a Large table (filler flows
// besides the tests').
func recordsWorker(t *testing.T, flows int) (*Engine, *Worker, *memQueue, *memQueue) {
	t.Helper()
	ct := conntrack.New(2*conntrack.LargeFlows+4096, conntrack.DefaultTimeouts)
	fillFlows(t, ct, conntrack.LargeFlows)
	e := NewEngine(ct, zap.NewNop())
	if err := e.SetWorkerFlows(flows); err != nil {
		t.Fatal(err)
	}
	if err := e.Reconfig(fixtureConfig()); err != nil {
		t.Fatal(err)
	}
	w, up, down := newWorkerOn(e, false)
	return e, w, up, down
}

// handshake opens a TCP flow from the client's port to VIP:80 through w,
// the backend advertising window win; it returns the client's frame for
// the flow's next segment (ACK, sequence 1001).
func handshake(t *testing.T, w *Worker, up, down *memQueue, port, win uint16) fixture.Frame {
	t.Helper()
	c := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoTCP, SrcPort: port, DstPort: fixture.HTTPPort, TCPFlags: fixture.FlagSYN, Seq: 1000}
	up.inject(c.Bytes())
	w.pump(up)
	out := down.takeTx()
	var p packet.Packet
	if len(out) != 1 || packet.Decode(out[0], &p) != packet.OK {
		t.Fatal("SYN not forwarded")
	}
	b := fixture.Frame{SrcMAC: [6]byte(out[0][0:6]), DstMAC: fixture.LBDownMAC, Src: p.Dst.IP(), Dst: p.Src.IP(),
		Proto: fixture.ProtoTCP, SrcPort: p.DstPort, DstPort: p.SrcPort, TCPFlags: fixture.FlagSYN | fixture.FlagACK,
		Seq: 5000, Ack: 1001, Window: win}
	down.inject(b.Bytes())
	w.pump(down)
	if len(up.takeTx()) != 1 {
		t.Fatal("SYN-ACK not replied")
	}
	c.TCPFlags, c.Seq = fixture.FlagACK, 1001
	up.inject(c.Bytes())
	w.pump(up)
	if len(down.takeTx()) != 1 {
		t.Fatal("ACK not forwarded")
	}
	return c
}

// An RST is checked against the sequence numbers a record deferred: the
// record's counts reach the table before the RST does (as the flow
// cache's do, TestCacheRSTSeesDeferredSequence).
func TestRecordsRSTSeesDeferredSequence(t *testing.T) {
	e, w, up, down := recordsWorker(t, 1024)
	c := handshake(t, w, up, down, 41000, 1000)
	before := e.Stats().Express
	for range 10 { // 4000 bytes: past the backend's window of 1000 from the handshake's sequence
		c.Payload = make([]byte, 400)
		up.inject(c.Bytes())
		w.pump(up)
		down.takeTx()
		c.Seq += 400
	}
	if got := e.Stats().Express - before; got != 10 || !w.xlarge {
		t.Fatalf("the records took %d of 10 segments (on: %v)", got, w.xlarge)
	}
	c.Payload, c.TCPFlags = nil, fixture.FlagRST|fixture.FlagACK
	up.inject(c.Bytes())
	w.pump(up)
	fwd := packet.Tuple{Src: packet.AddrFrom(fixture.Client), Dst: packet.AddrFrom(fixture.VIP), SrcPort: 41000,
		DstPort: fixture.HTTPPort, Proto: packet.ProtoTCP}
	if en, ok := e.Conntrack().Lookup(fwd, false); !ok || en.State != conntrack.Closed {
		t.Fatalf("an in-window RST after recorded segments left the flow %v (ignored RSTs %d)", en.State,
			e.Conntrack().Counters().IgnoredRSTs)
	}
}

// Every packet a record answered is counted in the table once the worker
// flushes, and a record is listed for the flush once however many packets
// it deferred.
func TestRecordsCountEveryPacket(t *testing.T) {
	fb := newFlowBench(t, conntrack.LargeFlows+1000, 1)
	fb.run(0, fb.n) // the handshakes before the table was Large made no record
	w := fb.ws[0]
	w.flushDeferred(time.Now().UnixNano())
	count := func() (n uint64) {
		for _, e := range fb.e.Conntrack().Entries(0) {
			n += e.Packets
		}
		return n
	}
	before, st := count(), fb.e.Stats()
	const packets = 3 * (conntrack.LargeFlows + 1000)
	fb.run(0, packets)
	if got := fb.e.Stats().Express - st.Express; got < packets*9/10 || !w.xlarge {
		t.Fatalf("the records took %d of %d packets (on: %v)", got, packets, w.xlarge)
	}
	seen := map[uint32]bool{}
	for _, i := range w.xr.dirty {
		if seen[i] {
			t.Fatalf("record %d listed twice for the flush", i)
		}
		seen[i] = true
	}
	w.flushDeferred(time.Now().UnixNano())
	if got := count() - before; got != packets {
		t.Fatalf("the table counted %d of %d packets", got, packets)
	}
}

// With more busy flows than records, the flows that have records keep
// them, and the others take the table path: no record is taken from a
// flow seen within FlushAfter.
func TestRecordsKeepBusyFlows(t *testing.T) {
	e, w, up, down := recordsWorker(t, 32) // 64 slots
	now := time.Now().UnixNano()
	w.clock = func() int64 { return now } // all within FlushAfter, however slow the machine
	var acks [][]byte
	for i := range 200 {
		c := handshake(t, w, up, down, uint16(20000+i), 0)
		acks = append(acks, c.Bytes())
	}
	held := func() map[xkey]bool {
		m := map[xkey]bool{}
		for i, tag := range w.xr.tags {
			if rec := &w.xr.recs[i]; tag != 0 && rec.epoch == w.xr.epoch {
				m[xkey{addrs: rec.addrs, ports: rec.ports, mac: rec.mac}] = true
			}
		}
		return m
	}
	before, st := held(), e.Stats()
	for range 2 {
		for _, a := range acks {
			up.inject(a)
			w.pump(up)
			down.takeTx()
		}
	}
	after := held()
	if len(before) < 32 || len(after) != len(before) {
		t.Fatalf("%d flows had records, %d after two rounds of 200 flows", len(before), len(after))
	}
	for k := range before {
		if !after[k] {
			t.Fatal("a busy flow's record was taken by another flow")
		}
	}
	if got := e.Stats().Express - st.Express; got != uint64(2*len(before)) {
		t.Fatalf("the records took %d packets, want 2 of each of the %d flows that have one", got, len(before))
	}
}

func TestSetWorkerFlows(t *testing.T) {
	e := NewEngine(conntrack.New(4096, conntrack.DefaultTimeouts), zap.NewNop())
	for _, n := range []int{-1, MaxWorkerFlows + 1} {
		if err := e.SetWorkerFlows(n); err == nil {
			t.Fatalf("SetWorkerFlows(%d) accepted", n)
		}
	}
	for _, n := range []int{0, 1, MaxWorkerFlows} {
		if err := e.SetWorkerFlows(n); err != nil {
			t.Fatalf("SetWorkerFlows(%d): %v", n, err)
		}
	}
	if err := e.SetWorkerFlows(1000); err != nil {
		t.Fatal(err)
	}
	if w, _, _ := newWorkerOn(e, false); w.xr == nil || len(w.xr.recs) != 2048 {
		t.Fatal("a worker for 1000 flow directions has not 2048 record slots")
	}
}

func TestRecordBytes(t *testing.T) {
	for _, c := range []struct{ flows, want int }{
		{0, 0}, {-1, 0}, {1, 64 * 136}, {32, 64 * 136}, {33, 128 * 136}, {1 << 19, 1 << 20 * 136},
		{MaxWorkerFlows, 2 * MaxWorkerFlows * 136},
	} {
		if got := RecordBytes(c.flows); got != c.want {
			t.Errorf("RecordBytes(%d) = %d, want %d", c.flows, got, c.want)
		}
	}
}

// A worker that sees no frame records could take for xretry batches in a
// row (IPv6 only) takes the plain pipeline, and goes back to records within
// xretry batches of the first IPv4 flow's packets.
func TestRecordsStandAsideForIPv6(t *testing.T) {
	e, w, up, down := recordsWorker(t, 1024)
	v6 := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client6, Dst: fixture.VIP6,
		Proto: fixture.ProtoUDP, SrcPort: 33333, DstPort: fixture.UDPPort, Payload: []byte("six")}.Bytes()
	for range xretry + 4 {
		up.inject(v6)
		w.pump(up)
		down.takeTx()
	}
	if w.xunkeyed < xretry {
		t.Fatalf("%d record batches in a row without a key, want %d or more", w.xunkeyed, xretry)
	}
	for w.batches%xretry != 1 { // the next try of records is xretry-1 batches away
		up.inject(v6)
		w.pump(up)
		down.takeTx()
	}
	v4 := fixture.Frame{SrcMAC: fixture.ClientMAC, DstMAC: fixture.LBUpMAC, Src: fixture.Client, Dst: fixture.VIP,
		Proto: fixture.ProtoUDP, SrcPort: 33333, DstPort: fixture.UDPPort, Payload: []byte("four")}.Bytes()
	before := e.Stats().Express
	for range 4 {
		up.inject(v4)
		w.pump(up)
		down.takeTx()
	}
	if got := e.Stats().Express - before; got != 0 {
		t.Fatalf("the plain pipeline's packets: %d taken by records", got)
	}
	for range 2*xretry + 2 {
		up.inject(v4)
		w.pump(up)
		down.takeTx()
	}
	if w.xunkeyed != 0 || e.Stats().Express-before < xretry {
		t.Fatalf("after IPv4 packets: %d unkeyed batches, %d taken by records", w.xunkeyed, e.Stats().Express-before)
	}
}
