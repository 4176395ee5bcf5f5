/* Firewall and DoS checks, run before steering. Each returns 1 to drop. */
#ifndef SCMLB_FILTER_H
#define SCMLB_FILTER_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "consts.h"
#include "structs.h"
#include "maps.h"

/* What the filters look at. has_ports is 0 for ICMP and fragments. */
struct pkt_meta {
	struct addr saddr; /* IPv4-mapped for IPv4 */
	struct addr daddr;
	__u16 sport; /* host order */
	__u16 dport;
	__u8 proto;
	__u8 has_ports;
	__u8 tcp_flags;
	__u8 v6;
	__u64 bytes;
};

static __always_inline void count_slot(void *map, __u32 slot, __u64 bytes)
{
	struct counter *c = bpf_map_lookup_elem(map, &slot);
	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline int rule_matches(const struct fw_rule *r, const struct pkt_meta *m)
{
	if (!r->active || (r->proto && r->proto != m->proto))
		return 0;
	if (!m->has_ports)
		return r->sport_lo == 0 && r->sport_hi == 0xffff && r->dport_lo == 0 && r->dport_hi == 0xffff;
	return m->sport >= r->sport_lo && m->sport <= r->sport_hi && m->dport >= r->dport_lo && m->dport <= r->dport_hi;
}

/* The loops below run through bpf_loop (Linux 5.17+): the verifier checks
 * each body once instead of unrolling 16 iterations of branches, which
 * exceeds its jump-history limit. */

struct fw_loop {
	const struct pkt_meta *m;
	struct rule_set *set;
	int drop;
};

static long fw_step(__u32 i, void *data)
{
	struct fw_loop *l = data;
	if (i >= MAX_RULES_PER_PREFIX || i >= l->set->count)
		return 1;
	__u32 slot = l->set->slots[i];
	struct fw_rule *r = bpf_map_lookup_elem(&fw_rules, &slot);
	if (r && rule_matches(r, l->m)) {
		count_slot(&fw_drops, slot, l->m->bytes);
		l->drop = 1;
		return 1;
	}
	return 0;
}

/* firewall drops when any rule covering the source matches; the first
 * matching rule (in rule order) gets the count. */
static __always_inline int firewall(const struct pkt_meta *m)
{
	struct fw_loop l = { .m = m };
	if (m->v6) {
		struct lpm_v6_key key = { .prefixlen = 128 };
		__builtin_memcpy(key.addr, m->saddr.w, sizeof(key.addr));
		l.set = bpf_map_lookup_elem(&fw_prefixes6, &key);
	} else {
		struct lpm_v4_key key = { .prefixlen = 32, .addr = m->saddr.w[3] };
		l.set = bpf_map_lookup_elem(&fw_prefixes, &key);
	}
	if (!l.set)
		return 0;
	bpf_loop(MAX_RULES_PER_PREFIX, fw_step, &l, 0);
	return l.drop;
}

struct dos_loop {
	const struct pkt_meta *m;
	__u64 now;
	int drop;
};

/* The source's state for policy i, in the map of its family. */
static __always_inline struct dos_state *dos_state_of(const struct pkt_meta *m, __u32 i)
{
	if (m->v6) {
		struct dos_key6 k = { .policy = i };
		__builtin_memcpy(k.addr, m->saddr.w, sizeof(k.addr));
		return bpf_map_lookup_elem(&dos_sources6, &k);
	}
	struct dos_key k = { .addr = m->saddr.w[3], .policy = i };
	return bpf_map_lookup_elem(&dos_sources, &k);
}

static __always_inline void dos_track(const struct pkt_meta *m, __u32 i, const struct dos_state *fresh)
{
	if (m->v6) {
		struct dos_key6 k = { .policy = i };
		__builtin_memcpy(k.addr, m->saddr.w, sizeof(k.addr));
		bpf_map_update_elem(&dos_sources6, &k, fresh, BPF_NOEXIST);
		return;
	}
	struct dos_key k = { .addr = m->saddr.w[3], .policy = i };
	bpf_map_update_elem(&dos_sources, &k, fresh, BPF_NOEXIST);
}

/* dos_step counts packets per source and policy in 1-second windows; past
 * the limit the source is blocked for the policy's time. Counting is
 * approximate under races between CPUs, which only shifts the trigger by a
 * few packets. */
static long dos_step(__u32 i, void *data)
{
	struct dos_loop *l = data;
	const struct pkt_meta *m = l->m;
	struct dos_policy *p = bpf_map_lookup_elem(&dos_policies, &i);
	if (!p || !p->active || p->proto != m->proto)
		return 0;
	struct dos_state *st = dos_state_of(m, i);
	if (st && st->blocked_until > l->now) {
		count_slot(&dos_drops, i, m->bytes);
		l->drop = 1;
		return 1;
	}
	if ((m->tcp_flags & p->flags_mask) != p->flags_value)
		return 0;
	if (!st) {
		struct dos_state fresh = { .window_start = l->now, .count = 1 };
		dos_track(m, i, &fresh);
		return 0;
	}
	if (l->now - st->window_start >= 1000000000ULL) {
		st->window_start = l->now;
		st->count = 1;
		return 0;
	}
	if (__sync_fetch_and_add(&st->count, 1) + 1 > p->limit_pps) {
		st->blocked_until = l->now + p->block_ns;
		count_slot(&dos_drops, i, m->bytes);
		l->drop = 1;
		return 1;
	}
	return 0;
}

/* Highest active policy slot + 1, written by the daemon: with no policy
 * the check costs one load, not 16 map lookups and a clock read. */
__u32 dos_slots;

static __always_inline int dos_check(const struct pkt_meta *m)
{
	__u32 n = dos_slots;
	if (!n)
		return 0;
	struct dos_loop l = { .m = m, .now = bpf_ktime_get_ns() };
	bpf_loop(n > MAX_DOS_POLICIES ? MAX_DOS_POLICIES : n, dos_step, &l, 0);
	return l.drop;
}

#endif
