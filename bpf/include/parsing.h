/* Bounds-checked header parsing. Each helper advances the cursor and
 * returns < 0 when the header does not fit in the packet. */
#ifndef SCMLB_PARSING_H
#define SCMLB_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>

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
