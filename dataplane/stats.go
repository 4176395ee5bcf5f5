package dataplane

import (
	"sync/atomic"
	"unsafe"
)

// Drop is why a worker dropped a packet.
type Drop uint8

// Drop reasons counted by the workers.
const (
	DropTruncated Drop = iota
	DropNotIP
	DropBadHeader
	DropFragment
	DropUnsupportedProto
	DropNoBackend     // service has no backend with weight > 0
	DropNoNeighbour   // backend MAC not resolved yet
	DropNoFlow        // backend packet without a tracked flow that Maglev could rebuild
	DropCollision     // reply tuple already used by another flow
	DropTxRingFull    //
	DropNoFrame       //
	DropTTLExceeded   // TTL <= 1: the load balancer is a hop
	DropSpoofedReply  // a "reply" from the client side, or from another MAC than the backend's next hop
	DropNoClientHop   // a flow could be rebuilt but the client's next-hop MAC is not known yet
	DropTooBig        // larger than the next link's MTU, and fragmenting allowed: not ours to fragment
	DropSNATExhausted // full-NAT: no free source port for this backend on any SNAT address
	DropICMPNoFlow    // an ICMP error quoting a packet of no tracked flow (never passed on untranslated)
	NumDrops
)

var dropNames = [NumDrops]string{"truncated", "not_ip", "bad_header", "fragment", "unsupported_proto",
	"no_backend", "no_neighbour", "no_flow", "conntrack_collision", "tx_ring_full", "no_free_frame",
	"ttl_exceeded", "spoofed_reply", "no_client_hop", "too_big", "snat_exhausted", "icmp_no_flow"}

func (d Drop) String() string {
	if d < NumDrops {
		return dropNames[d]
	}
	return "unknown"
}

// counter indexes a worker's counters.
type counter int

const (
	cRx counter = iota
	cForwarded
	cReplied
	cNewFlows
	cRebuilt
	cEchoReplies
	cICMPTranslated
	cFragNeeded
	cExpress
	cDrops      // + Drop
	numCounters = cDrops + counter(NumDrops)
)

// counters are one worker's. Only it writes them, as plain numbers (no
// atomic operation per packet); at the end of each batch it publishes the
// ones that changed to pub, a cache line of its own, which readers load.
type counters struct {
	n    [numCounters]uint64
	last [numCounters]uint64
	_    [64]byte // pub on its own cache lines
	pub  [numCounters]atomic.Uint64
	_    [64]byte
}

func (c *counters) publish() {
	for i := range c.n {
		if c.n[i] != c.last[i] {
			c.pub[i].Store(c.n[i])
			c.last[i] = c.n[i]
		}
	}
}

func (c *counters) load(i counter) uint64 { return c.pub[i].Load() }

// backendCounts gathers per-backend counts over batches, so the shared
// BackendStats get one atomic add per backend and flush instead of three
// per packet. The worker flushes it before a batch could fill it: it holds
// fewer than BatchSize/2 backends when a batch starts, and a batch adds at
// most BatchSize; the table has twice as many slots, found by the stats'
// address.
type backendCounts struct {
	slots [2 * BatchSize]backendCount
	used  []uint8
}

type backendCount struct {
	s                     *BackendStats
	packets, bytes, flows uint64
}

func (b *backendCounts) add(s *BackendStats, packets, bytes, flows uint64) {
	i := uint8(uintptr(unsafe.Pointer(s))>>4) & (2*BatchSize - 1)
	for b.slots[i].s != s {
		if b.slots[i].s == nil {
			b.slots[i].s = s
			b.used = append(b.used, i)
			break
		}
		i = (i + 1) & (2*BatchSize - 1)
	}
	c := &b.slots[i]
	c.packets += packets
	c.bytes += bytes
	c.flows += flows
}

func (b *backendCounts) flush() {
	for _, i := range b.used {
		c := &b.slots[i]
		if c.packets > 0 {
			c.s.Packets.Add(c.packets)
			c.s.Bytes.Add(c.bytes)
		}
		if c.flows > 0 {
			c.s.Flows.Add(c.flows)
		}
		*c = backendCount{}
	}
	b.used = b.used[:0]
}

// Stats is the sum over workers.
type Stats struct {
	RxPackets    uint64 `json:"rx_packets"`
	Forwarded    uint64 `json:"forwarded"` // client -> backend
	Replied      uint64 `json:"replied"`   // backend -> client
	NewFlows     uint64 `json:"new_flows"`
	RebuiltFlows uint64 `json:"rebuilt_flows"` // from a backend's packet, of the new flows
	// EchoReplies answered pings to VIPs; ICMPTranslated errors of tracked
	// flows passed on; FragNeededSent errors the load balancer sent itself.
	EchoReplies    uint64 `json:"echo_replies"`
	ICMPTranslated uint64 `json:"icmp_translated"`
	FragNeededSent uint64 `json:"frag_needed_sent"`
	// Express are the forwarded and replied packets the express path
	// handled (see express.go): a share of Forwarded plus Replied.
	Express uint64            `json:"express"`
	Drops   map[string]uint64 `json:"drops"`
}

// BackendStats are per-backend packet and byte counts (both directions).
type BackendStats struct {
	Packets, Bytes, Flows atomic.Uint64
}
