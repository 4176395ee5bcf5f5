package conntrack

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// snatFlow is a full-NAT-like flow: the backend sees SNAT address
// 10.0.2.100 with a port chosen, as snat does, so that the SNAT endpoint
// falls in the client's shard of t, and not yet in used (reply tuples
// must differ).
func snatFlow(t *Table, client uint32, used map[uint16]bool) (fwd, rev packet.Tuple) {
	fwd, rev = flow(client, 40000)
	snat := packet.Addr4([]byte{10, 0, 2, 100})
	want := t.Shard(fwd.Src, fwd.SrcPort, fwd.Proto)
	for port := uint16(1024); ; port++ {
		if !used[port] && t.Shard(snat, port, fwd.Proto) == want {
			used[port] = true
			rev.Dst, rev.DstPort = snat, port
			return fwd, rev
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	const now = int64(1e18)
	a := New(4096, DefaultTimeouts)
	var fwds, revs []packet.Tuple
	snatPorts := map[uint16]bool{}
	add := func(fwd, rev packet.Tuple, nf NewFlow) {
		t.Helper()
		if !a.Insert(fwd, rev, nf, sg(flagSYN), 60, now) {
			t.Fatal("insert")
		}
		a.Reply(rev, sg(flagSYN|flagACK), 60, now)
		a.Forward(fwd, sg(flagACK), 1000, now)
		fwds, revs = append(fwds, fwd), append(revs, rev)
	}
	for i := uint32(0); i < 100; i++ {
		fwd, rev := flow(i, 40000)
		add(fwd, rev, NewFlow{Backend: 1 + i%3, ClientMAC: packet.MAC{2, byte(i)}})
		fwd6, rev6 := flow6(i, 40000)
		add(fwd6, rev6, NewFlow{Backend: 7})
		fwdS, revS := snatFlow(a, 1000+i, snatPorts)
		add(fwdS, revS, NewFlow{Backend: 9})
	}
	var buf bytes.Buffer
	n, err := a.WriteSnapshot(&buf)
	if err != nil || n != 300 {
		t.Fatalf("wrote %d: %v", n, err)
	}
	b := New(4096, DefaultTimeouts) // another random seed
	restored, dropped, err := b.Restore(bytes.NewReader(buf.Bytes()), now+int64(time.Second), nil)
	if err != nil || restored != 300 || dropped != 0 {
		t.Fatalf("restored %d dropped %d: %v", restored, dropped, err)
	}
	// Both directions of every flow are found, full-NAT replies included
	// (their endpoint's shard depends on the seed, which came along).
	for i := range fwds {
		if _, ok := b.Lookup(fwds[i], false); !ok {
			t.Fatalf("flow %d: forward tuple lost", i)
		}
		if _, ok := b.Lookup(revs[i], true); !ok {
			t.Fatalf("flow %d: reply tuple lost (%v)", i, revs[i])
		}
	}
	want, got := map[packet.Tuple]Entry{}, map[packet.Tuple]Entry{}
	for _, e := range a.Entries(0) {
		want[e.Fwd] = e
	}
	for _, e := range b.Entries(0) {
		got[e.Fwd] = e
	}
	for k, e := range want {
		g := got[k]
		if g.Rev != e.Rev || g.Backend != e.Backend || g.State != e.State || g.Packets != e.Packets || g.Bytes != e.Bytes ||
			g.LastSeen != e.LastSeen || g.ClientMAC != e.ClientMAC || g.tcp != e.tcp || g.OneWay != e.OneWay {
			t.Fatalf("flow %v\n%+v\nrestored as\n%+v", k, e, g)
		}
	}

	// keep, expiry and capacity drop flows and count them.
	c := New(4096, DefaultTimeouts)
	restored, dropped, err = c.Restore(bytes.NewReader(buf.Bytes()), now, func(e *Entry) bool { return e.Backend != 9 })
	if err != nil || restored != 200 || dropped != 100 {
		t.Fatalf("keep: restored %d dropped %d: %v", restored, dropped, err)
	}
	d := New(4096, DefaultTimeouts)
	if restored, dropped, _ = d.Restore(bytes.NewReader(buf.Bytes()), now+int64(2*time.Hour*24*10), nil); restored != 0 || dropped != 300 {
		t.Fatalf("expired: restored %d dropped %d", restored, dropped)
	}
	small := New(MinCapacity, DefaultTimeouts)
	removed := 0
	small.OnRemove(func(*Entry) { removed++ }) // what keep accepted and the table had no room for
	if restored, dropped, err = small.Restore(bytes.NewReader(buf.Bytes()), now, nil); err != nil || restored+dropped != 300 ||
		restored > MinCapacity || removed != dropped-(300-small.Capacity()) {
		t.Fatalf("small table: restored %d dropped %d (%d to OnRemove): %v", restored, dropped, removed, err)
	}
	if _, _, err := small.Restore(bytes.NewReader(buf.Bytes()), now, nil); err == nil {
		t.Fatal("restored into a table that is not empty")
	}
}

// A damaged snapshot is refused whole, and the table stays as it was.
func TestSnapshotCorrupt(t *testing.T) {
	a := New(1024, DefaultTimeouts)
	for i := uint32(0); i < 10; i++ {
		fwd, rev := flow(i, 40000)
		a.Insert(fwd, rev, NewFlow{Backend: 1}, sg(flagSYN), 60, 1)
	}
	var buf bytes.Buffer
	a.WriteSnapshot(&buf)
	good := buf.Bytes()
	mut := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, b := range map[string][]byte{
		"empty":          {},
		"bad magic":      mut(func(b []byte) []byte { b[0] = 'X'; return b }),
		"other version":  mut(func(b []byte) []byte { b[9] = 9; return b }),
		"record size":    mut(func(b []byte) []byte { b[11]++; return b }),
		"flipped bit":    mut(func(b []byte) []byte { b[headerSize+40] ^= 1; return b }),
		"truncated":      good[:len(good)-10],
		"no checksum":    good[:len(good)-4],
		"trailing data":  append(append([]byte(nil), good...), 0),
		"count too high": mut(func(b []byte) []byte { b[15]++; return b }),
		"huge count":     mut(func(b []byte) []byte { b[12] = 0xff; return b }),
	} {
		b2 := New(1024, DefaultTimeouts)
		seed := b2.seed
		_, _, err := b2.Restore(bytes.NewReader(b), 1, nil)
		if !errors.Is(err, ErrSnapshot) {
			t.Errorf("%s: %v", name, err)
		}
		if b2.Len() != 0 || b2.seed != seed {
			t.Errorf("%s: a refused snapshot changed the table", name)
		}
	}
}

// A full-NAT flow whose SNAT endpoint is not in its client's shard (as in
// a snapshot written before the shard function changed) would have its
// replies looked for in another shard: it is dropped, not restored.
func TestSnapshotDropsFlowsOutOfShard(t *testing.T) {
	a := New(1024, DefaultTimeouts)
	fwd, rev := flow(1, 40000)
	rev.Dst = packet.Addr4([]byte{10, 0, 2, 100})
	want := a.Shard(fwd.Src, fwd.SrcPort, fwd.Proto)
	for rev.DstPort = 1024; a.Shard(rev.Dst, rev.DstPort, rev.Proto) == want; rev.DstPort++ {
	}
	good, goodRev := snatFlow(a, 2, map[uint16]bool{})
	for _, f := range [][2]packet.Tuple{{fwd, rev}, {good, goodRev}} {
		if !a.Insert(f[0], f[1], NewFlow{Backend: 1}, sg(flagSYN), 60, 1) {
			t.Fatal("insert")
		}
	}
	var buf bytes.Buffer
	if _, err := a.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	b := New(1024, DefaultTimeouts)
	removed := 0
	b.OnRemove(func(*Entry) { removed++ })
	if restored, dropped, err := b.Restore(&buf, 1, nil); err != nil || restored != 1 || dropped != 1 || removed != 1 {
		t.Fatalf("restored %d, dropped %d (%d to OnRemove): %v", restored, dropped, removed, err)
	}
	if _, ok := b.Lookup(goodRev, true); !ok {
		t.Fatal("the flow in its shard was not restored")
	}
}
