// Package xsk is AF_XDP for the workers: a UMEM of frames shared by a
// worker's sockets, and per socket the fill, completion, RX and TX rings,
// used in batches.
//
// It is written on golang.org/x/sys/unix alone. github.com/asavie/xdp
// (v0.3.3), used until the zero-copy work, cannot share a UMEM between
// sockets (so every two-arm forward was a copy), cannot bind with
// XDP_USE_NEED_WAKEUP or ask for zero-copy with a fallback, hides the
// completed frame addresses, and drives its rings with plain loads and
// stores; with shared UMEM no part of it was left in use.
//
// What this package does: the first socket of a UMEM registers it and binds
// with XDP_ZEROCOPY, falling back to XDP_COPY when the driver refuses (veth,
// generic XDP); the worker's other socket binds with XDP_SHARED_UMEM and
// fill and completion rings of its own (Linux 5.10+), so a frame received
// on one NIC is transmitted on the other as it is. Both bind with
// XDP_USE_NEED_WAKEUP: TX is kicked with sendto only when the ring's flag
// asks (copy mode always does, and sends at most 32 frames per call, so
// the kick is repeated while frames remain), RX with recvfrom when the fill
// ring asks. Ring indices are read and published with atomic operations;
// free frames are a LIFO stack shared by the UMEM's sockets.
package xsk
