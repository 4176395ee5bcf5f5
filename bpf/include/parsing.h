/* Bounds-checked header parsing. Each helper advances the cursor and
 * returns < 0 when the header does not fit in the packet. */
#ifndef SCMLB_PARSING_H
#define SCMLB_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include "consts.h"

struct cursor {
	void *pos;
	void *end;
};

/* Returns the EtherType in network byte order. VLAN tags are not parsed:
 * tagged frames are passed to the kernel. */
static __always_inline int parse_eth(struct cursor *c, struct ethhdr **eth)
{
	struct ethhdr *h = c->pos;
	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*eth = h;
	return h->h_proto;
}

/* IPv4 with options: the cursor moves by IHL, which must be >= 5. */
static __always_inline int parse_ipv4(struct cursor *c, struct iphdr **ip)
{
	struct iphdr *h = c->pos;
	if ((void *)(h + 1) > c->end)
		return -1;
	__u32 len = h->ihl * 4;
	if (len < sizeof(*h))
		return -1;
	if (c->pos + len > c->end)
		return -1;
	c->pos += len;
	*ip = h;
	return h->protocol;
}

/* IPv6: the fixed header; the extension headers are skip_ext6's. */
static __always_inline int parse_ipv6(struct cursor *c, struct ipv6hdr **ip6)
{
	struct ipv6hdr *h = c->pos;
	if ((void *)(h + 1) > c->end || h->version != 6)
		return -1;
	c->pos = h + 1;
	*ip6 = h;
	return h->nexthdr;
}

/* skip_ext6 walks hop-by-hop, routing and destination-options headers
 * (at most MAX_EXT_HEADERS) from next, leaving the cursor on the upper
 * layer and returning its protocol. A fragment header ends the walk with
 * *fragment set and its next header as the protocol. < 0: truncated, or
 * too many headers. */
static __always_inline int skip_ext6(struct cursor *c, __u8 next, int *fragment)
{
#pragma unroll
	for (int i = 0; i < MAX_EXT_HEADERS + 1; i++) {
		if (next != NEXTHDR_HOP && next != NEXTHDR_ROUTING && next != NEXTHDR_DEST && next != NEXTHDR_FRAGMENT)
			return next;
		__u8 *h = c->pos;
		if ((void *)(h + 8) > c->end)
			return -1;
		if (next == NEXTHDR_FRAGMENT) {
			*fragment = 1;
			c->pos = h + 8;
			return h[0];
		}
		next = h[0];
		c->pos = h + (h[1] + 1) * 8;
	}
	return -1;
}

/* TCP and UDP both start with source and destination port. */
struct l4ports {
	__u16 source;
	__u16 dest;
};

static __always_inline int parse_ports(struct cursor *c, struct l4ports **p)
{
	struct l4ports *h = c->pos;
	if ((void *)(h + 1) > c->end)
		return -1;
	*p = h;
	return 0;
}

/* TCP flags are byte 13 of the TCP header. */
static __always_inline int parse_tcp_flags(struct cursor *c, __u8 *flags)
{
	__u8 *h = c->pos;
	if ((void *)(h + 14) > c->end)
		return -1;
	*flags = h[13];
	return 0;
}

#endif
