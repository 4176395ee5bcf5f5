package dataplane

import "sync/atomic"

// Drop reasons counted by the workers.
const (
	DropTruncated = iota
	DropNotIPv4
	DropBadHeader
	DropFragment
	DropUnsupportedProto
	DropNoBackend   // service has no backend with weight > 0
	DropNoNeighbour // backend MAC not resolved yet
	DropNoFlow      // backend packet without a tracked flow
	DropCollision   // reply tuple already used by another flow
	DropTxRingFull
	DropNoFrame
	NumDrops
)

// DropNames names the drop reasons, by index.
var DropNames = [NumDrops]string{"truncated", "not_ipv4", "bad_header", "fragment", "unsupported_proto",
	"no_backend", "no_neighbour", "no_flow", "conntrack_collision", "tx_ring_full", "no_free_frame"}

// counters are one worker's; only it writes them, others read atomically.
type counters struct {
	rx, forwarded, replied, newFlows atomic.Uint64
	drops                            [NumDrops]atomic.Uint64
}

// Stats is the sum over workers.
type Stats struct {
	RxPackets uint64            `json:"rx_packets"`
	Forwarded uint64            `json:"forwarded"` // client -> backend
	Replied   uint64            `json:"replied"`   // backend -> client
	NewFlows  uint64            `json:"new_flows"`
	Drops     map[string]uint64 `json:"drops"`
}

// BackendStats are per-backend packet and byte counts (both directions).
type BackendStats struct {
	Packets, Bytes, Flows atomic.Uint64
}
