package conntrack

import (
	"net/netip"
	"testing"
	"unsafe"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
)

// flow6 is flow with IPv6 clients that differ only in their upper 64 bits,
// which IPv4 never uses: they must still be told apart and spread.
func flow6(client uint32, port uint16) (fwd, rev packet.Tuple) {
	c := packet.AddrFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(client >> 24), byte(client >> 16), byte(client >> 8), byte(client), 15: 1}))
	v := packet.AddrFrom(netip.MustParseAddr("2001:db8:100::1"))
	b := packet.AddrFrom(netip.MustParseAddr("2001:db8:2::11"))
	fwd = packet.Tuple{Src: c, Dst: v, SrcPort: port, DstPort: 80, Proto: packet.ProtoTCP}
	rev = packet.Tuple{Src: b, Dst: c, SrcPort: 8080, DstPort: port, Proto: packet.ProtoTCP}
	return
}

func TestIPv6Flows(t *testing.T) {
	tb := New(4096, DefaultTimeouts)
	shards := map[int]bool{}
	for i := uint32(0); i < 1000; i++ {
		fwd, rev := flow6(i, 40000)
		if !tb.Insert(fwd, rev, NewFlow{Backend: i}, sg(flagSYN), 60, 1) {
			t.Fatalf("insert %d failed", i)
		}
		shards[tb.Shard(fwd.Src, fwd.SrcPort, fwd.Proto)] = true
	}
	for i := uint32(0); i < 1000; i++ {
		fwd, rev := flow6(i, 40000)
		if h, ok := tb.Forward(fwd, sg(flagACK), 60, 2); !ok || h.Backend != i {
			t.Fatalf("forward %d: %+v %v", i, h, ok)
		}
		if h, ok := tb.Reply(rev, sg(flagACK), 60, 3); !ok || h.Backend != i || h.VIP != fwd.Dst {
			t.Fatalf("reply %d: %+v %v", i, h, ok)
		}
	}
	if len(shards) < numShards/2 {
		t.Fatalf("1000 IPv6 clients in %d of %d shards", len(shards), numShards)
	}
	// An IPv4 flow with the same low 32 bits is another flow.
	fwd6, _ := flow6(7, 40000)
	fwd4, _ := flow(0, 40000)
	fwd4.Src = packet.Addr4(fwd6.Src[12:])
	if _, ok := tb.Forward(fwd4, sg(flagACK), 60, 4); ok {
		t.Fatal("an IPv4 tuple matched an IPv6 flow")
	}
}

// A lookup reads the whole entry: at a million flows each of its cache
// lines is a miss, so it is two lines, no more.
func TestEntryIsTwoCacheLines(t *testing.T) {
	if n := unsafe.Sizeof(Entry{}); n != 128 {
		t.Fatalf("Entry is %d bytes, want 128", n)
	}
}
