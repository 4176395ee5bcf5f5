//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* scmlb-xsk XDP program: count, then steer service traffic and backend
 * replies to the AF_XDP socket of the RX queue; pass everything else. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include "include/consts.h"
#include "include/structs.h"
#include "include/maps.h"
#include "include/parsing.h"
#include "include/filter.h"

char __license[] SEC("license") = "GPL";

/* Force BTF for the enums so bpf2go can emit them as Go types. */
const enum proto_idx unused_proto_idx __attribute__((unused));
const enum verdict unused_verdict __attribute__((unused));
const enum limits unused_limits __attribute__((unused));
const struct backend_host unused_backend_host __attribute__((unused));

/* The backend-facing interface (the upstream one in one-arm mode), written
 * by the daemon; 0 until then, which exempts nothing. */
__u32 backend_ifindex;

/* from_backend: the packet comes from a backend host through its next hop
 * on the backend interface (a reply, or an answer to the host's health
 * probe), so it is not client traffic and the filters leave it alone. */
static __always_inline int from_backend(struct xdp_md *ctx, const struct ethhdr *eth, const struct addr *saddr)
{
	if (!backend_ifindex || ctx->ingress_ifindex != backend_ifindex)
		return 0;
	struct backend_host *h = bpf_map_lookup_elem(&backend_hosts, saddr);
	if (!h)
		return 0;
	const __u8 *a = h->mac, *b = eth->h_source;
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}
const struct dump_meta unused_dump_meta __attribute__((unused));

static __always_inline void count(void *map, __u32 idx, __u64 bytes)
{
	struct counter *c = bpf_map_lookup_elem(map, &idx);
	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline __u32 proto_index(__u8 proto, int v6)
{
	if (v6) {
		switch (proto) {
		case IPPROTO_ICMPV6:
			return PROTO_ICMPV6;
		case IPPROTO_TCP:
			return PROTO_TCP6;
		case IPPROTO_UDP:
			return PROTO_UDP6;
		}
		return PROTO_IPV6_OTHER;
	}
	switch (proto) {
	case IPPROTO_ICMP:
		return PROTO_ICMP;
	case IPPROTO_TCP:
		return PROTO_TCP;
	case IPPROTO_UDP:
		return PROTO_UDP;
	}
	return PROTO_IPV4_OTHER;
}

/* mapped4 is an IPv4 address as the maps hold it: ::ffff:a.b.c.d. */
static __always_inline void mapped4(struct addr *a, __u32 v4)
{
	a->w[0] = 0;
	a->w[1] = 0;
	a->w[2] = bpf_htonl(0xffff);
	a->w[3] = v4;
}

/* While a daemon restarts with --restart-hold, the program stays attached
 * (a pinned link) and drops what it would steer until this time
 * (bpf_ktime_get_ns) or until the next daemon replaces it: the kernel
 * would otherwise answer the flows' packets (with RSTs, for a full-NAT
 * address that is the host's own). Senders retransmit. 0: never. */
__u64 hold_until_ns;

/* Full-NAT source ports, host order, written by the daemon. */
__u32 snat_port_lo;
__u32 snat_port_hi;

/* to_lb: a backend's packet to daddr:dport belongs to the load balancer
 * (a reply to steer), not to the host: any address but the host's own,
 * and the host's full-NAT addresses within the SNAT port range. */
static __always_inline int to_lb(const struct addr *daddr, __u16 dport)
{
	if (!bpf_map_lookup_elem(&local_addrs, daddr))
		return 1;
	return bpf_map_lookup_elem(&snat_addrs, daddr) && dport >= snat_port_lo && dport <= snat_port_hi;
}

/* steer_l4: a TCP/UDP packet to a service, or a backend's reply. */
static __always_inline __u32 steer_l4(const struct pkt_meta *m, const struct l4ports *ports)
{
	struct endpoint ep = { .addr = m->daddr, .port = ports->dest, .proto = m->proto };
	if (bpf_map_lookup_elem(&services, &ep))
		return VERDICT_STEER_SERVICE;
	ep.addr = m->saddr;
	ep.port = ports->source;
	if (!bpf_map_lookup_elem(&backends, &ep))
		return VERDICT_PASS;
	return to_lb(&m->daddr, bpf_ntohs(ports->dest)) ? VERDICT_STEER_REPLY : VERDICT_PASS;
}

/* steer_error: an ICMP(v6) error that is not about a VIP's packet is a
 * backend's about one the load balancer forwarded when the quoted packet
 * went to a backend: steered like its replies. */
static __always_inline __u32 steer_error(const struct pkt_meta *m, struct endpoint *quoted_dst, __u16 quoted_sport)
{
	if (!bpf_map_lookup_elem(&backends, quoted_dst))
		return VERDICT_PASS;
	return to_lb(&m->daddr, bpf_ntohs(quoted_sport)) ? VERDICT_STEER_REPLY : VERDICT_PASS;
}

/* steer_icmp: echo requests to a VIP, and errors about a VIP's packets,
 * go to the workers like service traffic; errors a backend sends about a
 * packet the load balancer forwarded (the quoted packet's destination is a
 * backend) like its replies. The worker looks the quoted flow up. */
static __always_inline __u32 steer_icmp(struct cursor *c, const struct pkt_meta *m)
{
	__u8 *h = c->pos;
	if ((void *)(h + 8) > c->end)
		return VERDICT_PASS;
	__u8 type = h[0];
	int err = type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAM_PROBLEM;
	if ((type == ICMP_ECHO || err) && bpf_map_lookup_elem(&vips, &m->daddr))
		return VERDICT_STEER_SERVICE;
	if (!err)
		return VERDICT_PASS;
	struct iphdr *in = (void *)(h + 8);
	if ((void *)(in + 1) > c->end || in->ihl < 5)
		return VERDICT_PASS;
	if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
		return VERDICT_PASS;
	struct l4ports *p = (void *)in + in->ihl * 4;
	if ((void *)(p + 1) > c->end)
		return VERDICT_PASS;
	struct endpoint ep = { .port = p->dest, .proto = in->protocol };
	mapped4(&ep.addr, in->daddr);
	return steer_error(m, &ep, p->source);
}

/* steer_icmp6 is steer_icmp for ICMPv6: echo requests and errors (types
 * 1-4) about a VIP's packets, and backends' errors. NDP and the rest pass.
 * A quoted packet with extension headers is not looked into. */
static __always_inline __u32 steer_icmp6(struct cursor *c, const struct pkt_meta *m)
{
	__u8 *h = c->pos;
	if ((void *)(h + 8) > c->end)
		return VERDICT_PASS;
	__u8 type = h[0];
	int err = type >= ICMPV6_ERR_MIN && type <= ICMPV6_ERR_MAX;
	if ((type == ICMPV6_ECHO_REQUEST || err) && bpf_map_lookup_elem(&vips, &m->daddr))
		return VERDICT_STEER_SERVICE;
	if (!err)
		return VERDICT_PASS;
	struct ipv6hdr *in = (void *)(h + 8);
	if ((void *)(in + 1) > c->end)
		return VERDICT_PASS;
	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
		return VERDICT_PASS;
	struct l4ports *p = (void *)(in + 1);
	if ((void *)(p + 1) > c->end)
		return VERDICT_PASS;
	struct endpoint ep = { .port = p->dest, .proto = in->nexthdr };
	__builtin_memcpy(ep.addr.w, &in->daddr, sizeof(ep.addr.w));
	return steer_error(m, &ep, p->source);
}

/* is_ndp: an ICMPv6 router/neighbour solicitation or advertisement, or a
 * redirect (types 133-137) at the cursor. */
static __always_inline int is_ndp(struct cursor *c)
{
	__u8 *h = c->pos;
	if ((void *)(h + 1) > c->end)
		return 0;
	return h[0] >= ICMPV6_NDP_MIN && h[0] <= ICMPV6_NDP_MAX;
}

/* addr_eq compares two addresses. */
static __always_inline int addr_eq(const struct addr *a, const struct addr *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

/* dump copies a packet matching the capture filter to userspace. */
static __always_inline void dump(struct xdp_md *ctx, const struct pkt_meta *m, __u32 verdict, __u64 bytes)
{
	__u32 zero = 0;
	struct dump_cfg *cfg = bpf_map_lookup_elem(&dump_config, &zero);
	if (!cfg || !cfg->enabled)
		return;
	if (cfg->proto && cfg->proto != m->proto)
		return;
	const struct addr any = {};
	if (!addr_eq(&cfg->addr, &any) && !addr_eq(&cfg->addr, &m->saddr) && !addr_eq(&cfg->addr, &m->daddr))
		return;
	if (cfg->port && (!m->has_ports || (cfg->port != m->sport && cfg->port != m->dport)))
		return;
	struct dump_meta meta = {
		.ts = bpf_ktime_get_ns(),
		.ifindex = ctx->ingress_ifindex,
		.queue = ctx->rx_queue_index,
		.verdict = verdict,
		.pkt_len = bytes,
		.cap_len = bytes < cfg->snaplen ? bytes : cfg->snaplen,
	};
	/* The upper 32 bits of flags: how many packet bytes to append. */
	__u64 flags = ((__u64)meta.cap_len << 32) | BPF_F_CURRENT_CPU;
	bpf_perf_event_output(ctx, &dump_events, flags, &meta, sizeof(meta));
}

SEC("xdp")
int xdp_steer(struct xdp_md *ctx)
{
	struct cursor c = { .pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end };
	__u64 bytes = c.end - c.pos;
	__u32 verdict = VERDICT_PASS;
	int action = XDP_PASS;
	struct ethhdr *eth;
	struct l4ports *ports = 0;
	struct pkt_meta m = { .bytes = bytes };

	int eth_type = parse_eth(&c, &eth);
	if (eth_type < 0) {
		count(&proto_stats, PROTO_NON_IP, bytes);
		verdict = VERDICT_MALFORMED;
		goto out;
	}
	int proto, fragment = 0;
	if (eth_type == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip;
		proto = parse_ipv4(&c, &ip);
		if (proto < 0) {
			count(&proto_stats, PROTO_IPV4_OTHER, bytes);
			verdict = VERDICT_MALFORMED;
			goto out;
		}
		mapped4(&m.saddr, ip->saddr);
		mapped4(&m.daddr, ip->daddr);
		fragment = ip->frag_off & bpf_htons(IP_MF | IP_OFFSET);
	} else if (eth_type == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6;
		m.v6 = 1;
		proto = parse_ipv6(&c, &ip6);
		if (proto >= 0) {
			__builtin_memcpy(m.saddr.w, &ip6->saddr, sizeof(m.saddr.w));
			__builtin_memcpy(m.daddr.w, &ip6->daddr, sizeof(m.daddr.w));
			proto = skip_ext6(&c, proto, &fragment);
		}
		if (proto < 0) {
			count(&proto_stats, PROTO_IPV6_OTHER, bytes);
			verdict = VERDICT_MALFORMED;
			goto out;
		}
	} else {
		count(&proto_stats, PROTO_NON_IP, bytes);
		goto out;
	}
	count(&proto_stats, proto_index(proto, m.v6), bytes);

	m.proto = proto;
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && !fragment) {
		if (parse_ports(&c, &ports) < 0) {
			verdict = VERDICT_MALFORMED;
			goto out;
		}
		m.has_ports = 1;
		m.sport = bpf_ntohs(ports->source);
		m.dport = bpf_ntohs(ports->dest);
		if (proto == IPPROTO_TCP && parse_tcp_flags(&c, &m.tcp_flags) < 0) {
			verdict = VERDICT_MALFORMED;
			goto out;
		}
	}
	/* NDP is to IPv6 what ARP is to IPv4: never filtered (a rule denying
	 * icmpv6 from a prefix must not cut its hosts off the link). */
	if (m.v6 && proto == IPPROTO_ICMPV6 && !fragment && is_ndp(&c))
		goto out;
	/* Filters run on every IP packet from clients, steered or not: they
	 * protect the host as well as the services. Backends' own packets are
	 * not theirs to judge (a policy must never stall a reply stream). */
	if (!from_backend(ctx, eth, &m.saddr)) {
		if (firewall(&m)) {
			verdict = VERDICT_FW_DROP;
			action = XDP_DROP;
			goto out;
		}
		if (dos_check(&m)) {
			verdict = VERDICT_DOS_DROP;
			action = XDP_DROP;
			goto out;
		}
	}
	if (fragment) {
		verdict = VERDICT_FRAGMENT;
		goto out;
	}
	if (ports)
		verdict = steer_l4(&m, ports);
	else if (proto == IPPROTO_ICMP && !m.v6)
		verdict = steer_icmp(&c, &m);
	else if (proto == IPPROTO_ICMPV6 && m.v6)
		verdict = steer_icmp6(&c, &m);
	if (verdict == VERDICT_PASS)
		goto out;
	if (hold_until_ns && bpf_ktime_get_ns() < hold_until_ns) {
		verdict = VERDICT_HELD;
		action = XDP_DROP;
		goto out;
	}
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 *slot = bpf_map_lookup_elem(&if_slots, &ifindex);
	__u32 s = slot ? *slot : 0;
	/* Each interface owns MAX_QUEUES keys: queue MAX_QUEUES of one NIC must
	 * not land on the next NIC's queue 0. */
	if (ctx->rx_queue_index >= MAX_QUEUES || s >= MAX_IFACES) {
		verdict = VERDICT_NO_SOCKET;
		goto out;
	}
	__u32 key = s * MAX_QUEUES + ctx->rx_queue_index;
	/* The low bits of flags are the action when the slot is empty. */
	action = bpf_redirect_map(&xsks, key, XDP_PASS);
	if (action != XDP_REDIRECT)
		verdict = VERDICT_NO_SOCKET;
out:
	count(&verdict_stats, verdict, bytes);
	dump(ctx, &m, verdict, bytes);
	return action;
}
