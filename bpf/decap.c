//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/* scmlb-xsk decap: runs on a dsr-ipip backend. An IPv4-in-IPv4 packet
 * addressed to this host has its outer header stripped and goes on to the
 * stack as the inner packet (client -> VIP, the VIP on the backend's
 * loopback). Everything else passes untouched. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "GPL";

#ifndef MAX_DECAP_ADDRS
#define MAX_DECAP_ADDRS 256
#endif
#ifndef MAX_DECAP_VIPS
#define MAX_DECAP_VIPS 4096
#endif

/* Index into decap_stats. */
enum decap_verdict {
	DECAP_PASS = 0,      /* not IPIP: the stack's */
	DECAP_DONE = 1,      /* outer header stripped */
	DECAP_NOT_OURS = 2,  /* IPIP to another address: passed as it is */
	DECAP_NOT_VIP = 3,   /* inner destination not a listed VIP: passed as it is */
	DECAP_MALFORMED = 4, /* too short for the headers it claims: passed */
	DECAP_MAX = 5,
};

const enum decap_verdict unused_decap_verdict __attribute__((unused));

/* This host's IPv4 addresses (network order) -> 1: outer destinations. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_DECAP_ADDRS);
	__type(key, __u32);
	__type(value, __u8);
} decap_addrs SEC(".maps");

/* VIPs (network order) -> 1, when the operator lists them (decap_vips_only). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_DECAP_VIPS);
	__type(key, __u32);
	__type(value, __u8);
} decap_vips SEC(".maps");

/* enum decap_verdict -> packets, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DECAP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} decap_stats SEC(".maps");

/* 1: only inner packets to a VIP in decap_vips are decapsulated. */
__u32 decap_vips_only;

static __always_inline int done(__u32 verdict)
{
	__u64 *n = bpf_map_lookup_elem(&decap_stats, &verdict);
	if (n)
		(*n)++;
	return XDP_PASS;
}

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return done(DECAP_PASS);
	struct iphdr *outer = (void *)(eth + 1);
	if ((void *)(outer + 1) > end)
		return done(DECAP_MALFORMED);
	if (outer->protocol != IPPROTO_IPIP)
		return done(DECAP_PASS);
	__u32 olen = outer->ihl * 4;
	if (olen < sizeof(*outer))
		return done(DECAP_MALFORMED);
	__u32 daddr = outer->daddr;
	if (!bpf_map_lookup_elem(&decap_addrs, &daddr))
		return done(DECAP_NOT_OURS);
	struct iphdr *inner = (void *)outer + olen;
	if ((void *)(inner + 1) > end)
		return done(DECAP_MALFORMED);
	__u32 vip = inner->daddr;
	if (decap_vips_only && !bpf_map_lookup_elem(&decap_vips, &vip))
		return done(DECAP_NOT_VIP);
	/* The Ethernet header moves up to just before the inner header (the
	 * two cannot overlap: olen >= 20 > 14), then the frame starts there. */
	struct ethhdr *moved = (void *)inner - sizeof(*eth);
	if ((void *)(moved + 1) > end)
		return done(DECAP_MALFORMED);
	__builtin_memmove(moved, eth, sizeof(*eth));
	if (bpf_xdp_adjust_head(ctx, olen))
		return done(DECAP_MALFORMED);
	return done(DECAP_DONE);
}
