// Package conntrack tracks load-balanced flows: client->VIP to the chosen
// backend, and backend->client replies back to the VIP. Bounded size,
// TCP-state timeouts, no allocation per packet.
//
// The table is shared by all workers and sharded by the client endpoint:
// a request and its reply arrive on different NICs or RX queues (RSS hashes
// each direction differently), so a strictly per-worker table would miss
// replies. Both directions of a flow hash to the same shard, whose mutex is
// held for a few tens of nanoseconds.
package conntrack
