// Package dataplane forwards load-balanced packets between AF_XDP queues:
// one Worker per RX queue decodes, tracks the flow, picks a backend with
// Maglev, rewrites headers and transmits. The control plane changes what it
// does only through Engine.Reconfig, which swaps an immutable table that
// workers read with one atomic load per batch.
package dataplane
