package dataplane

import "sync/atomic"

// Drop is why a worker dropped a packet.
type Drop uint8

// Drop reasons counted by the workers.
const (
	DropTruncated Drop = iota
	DropNotIPv4
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

var dropNames = [NumDrops]string{"truncated", "not_ipv4", "bad_header", "fragment", "unsupported_proto",
	"no_backend", "no_neighbour", "no_flow", "conntrack_collision", "tx_ring_full", "no_free_frame",
	"ttl_exceeded", "spoofed_reply", "no_client_hop", "too_big", "snat_exhausted", "icmp_no_flow"}

func (d Drop) String() string {
	if d < NumDrops {
		return dropNames[d]
	}
	return "unknown"
}

// counters are one worker's; only it writes them, others read atomically.
type counters struct {
	rx, forwarded, replied, newFlows, rebuilt atomic.Uint64
	echoReplies, icmpTranslated, fragNeeded   atomic.Uint64
	drops                                     [NumDrops]atomic.Uint64
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
	EchoReplies    uint64            `json:"echo_replies"`
	ICMPTranslated uint64            `json:"icmp_translated"`
	FragNeededSent uint64            `json:"frag_needed_sent"`
	Drops          map[string]uint64 `json:"drops"`
}

// BackendStats are per-backend packet and byte counts (both directions).
type BackendStats struct {
	Packets, Bytes, Flows atomic.Uint64
}
