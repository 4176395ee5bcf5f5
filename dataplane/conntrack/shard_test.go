package conntrack

import (
	"net/netip"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// A full-NAT port must be in its client's shard: a SNAT range that missed
// a shard would refuse that shard's clients while it has free ports (in an
// e2e run, a 64-port range refused one client's every SYN). Every aligned
// block of ShardSpan ports must hold one port of each shard, whatever the
// table's seed, address and protocol.
func TestShardBlocksCoverEveryShard(t *testing.T) {
	addrs := []packet.Addr{packet.AddrFrom(netip.MustParseAddr("10.0.2.100")), packet.AddrFrom(netip.MustParseAddr("192.0.2.1")),
		packet.AddrFrom(netip.MustParseAddr("2001:db8:2::100"))}
	for range 20 {
		tb := New(64, DefaultTimeouts)
		for _, a := range addrs {
			for _, proto := range []ipproto.Proto{ipproto.TCP, ipproto.UDP} {
				for _, lo := range []int{0, 1024, 40000, 65536 - ShardSpan} {
					seen := map[int]bool{}
					for p := lo; p < lo+ShardSpan; p++ {
						seen[tb.Shard(a, uint16(p), proto)] = true
					}
					if len(seen) != numShards {
						t.Fatalf("ports %d-%d of %v/%v are in %d of %d shards", lo, lo+ShardSpan-1, a, proto, len(seen), numShards)
					}
				}
			}
		}
	}
}

func TestCoversShards(t *testing.T) {
	for _, c := range []struct {
		lo, hi uint16
		want   bool
	}{
		{40000, 40063, true}, {40001, 40064, false}, {40001, 40126, false}, {40001, 40127, true},
		{1024, 65535, true}, {65472, 65535, true}, {65473, 65535, false}, {1, 63, false}, {0, 63, true}, {5, 5, false},
	} {
		if got := CoversShards(c.lo, c.hi); got != c.want {
			t.Errorf("CoversShards(%d, %d) = %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
}
