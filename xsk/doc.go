// Package xsk is the AF_XDP socket of one RX queue: UMEM, fill, completion,
// RX and TX rings, used in batches.
//
// It is built on github.com/asavie/xdp v0.3.3, which creates the socket,
// registers the UMEM, binds and closes. That library is extended here where
// it is too slow or unsafe for a forwarding path: its ring indices are plain
// loads and stores (no ordering against the kernel), Transmit panics on an
// unexpected sendto errno and kicks once (the kernel's copy mode sends at
// most 32 frames per kick), Complete discards the completed addresses and
// GetDescs scans every frame. So this package maps the same four rings again
// from the socket fd and drives them itself with atomic index updates, a
// LIFO stack of free frames, and counted (never fatal) kick errors.
package xsk
