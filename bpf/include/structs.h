/* Structs shared with Go through bpf2go -type. Addresses and ports are in
 * network byte order, exactly as they appear in the packet. */
#ifndef SCMLB_STRUCTS_H
#define SCMLB_STRUCTS_H

#include <linux/types.h>
#include "consts.h"

/* An IP address as the packet holds it, 16 bytes for both families: an
 * IPv4 address is IPv4-mapped (::ffff:a.b.c.d), so one map serves both. */
struct addr {
	__u32 w[4];
};

/* An L4 endpoint: a service VIP:port or a backend ip:port. */
struct endpoint {
	struct addr addr;
	__u16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

/* A backend host's next-hop MAC: its packets that arrive on the backend
 * interface from that MAC are exempt from the firewall and DoS checks. */
struct backend_host {
	__u8 mac[6];
	__u16 pad;
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

/* LPM trie key: prefix length, then the IPv4 network in network order. */
struct lpm_v4_key {
	__u32 prefixlen;
	__u32 addr;
};

/* The same for IPv6 (its own trie: prefix lengths up to 128). */
struct lpm_v6_key {
	__u32 prefixlen;
	__u32 addr[4];
};

/* Rules that apply to addresses whose longest matching rule prefix is this
 * one: the rules of this prefix and of every shorter prefix containing it,
 * in rule order. */
struct rule_set {
	__u32 count;
	__u32 slots[MAX_RULES_PER_PREFIX];
};

/* A deny rule. Ports are host order, inclusive; 0-65535 means any. A
 * packet without ports (ICMP, fragments) matches only a rule whose ranges
 * are both "any". */
struct fw_rule {
	__u8 active;
	__u8 proto; /* 0: any */
	__u16 sport_lo;
	__u16 sport_hi;
	__u16 dport_lo;
	__u16 dport_hi;
	__u16 pad;
};

/* A DoS policy: more than limit_pps packets/s of proto (and, for TCP, with
 * flags & flags_mask == flags_value) from one source blocks all of that
 * source's proto packets for block_ns. */
struct dos_policy {
	__u8 active;
	__u8 proto;
	__u8 flags_mask;
	__u8 flags_value;
	__u32 limit_pps;
	__u64 block_ns;
};

/* Packet capture filter; zero fields match anything. */
struct dump_cfg {
	__u32 enabled;
	struct addr addr; /* source or destination; all zero: any */
	__u16 port; /* source or destination, host order */
	__u8 proto;
	__u8 pad;
	__u32 snaplen;
};

/* Sent before the captured bytes of each packet. */
struct dump_meta {
	__u64 ts; /* bpf_ktime_get_ns */
	__u32 ifindex;
	__u32 queue;
	__u32 verdict; /* enum verdict */
	__u32 pkt_len;
	__u32 cap_len;
	__u32 pad;
};

struct dos_key {
	__u32 addr; /* source, network order */
	__u32 policy;
};

struct dos_key6 {
	__u32 addr[4]; /* IPv6 source */
	__u32 policy;
};

struct dos_state {
	__u64 window_start; /* bpf_ktime_get_ns of the current 1s window */
	__u64 blocked_until;
	__u32 count; /* matching packets in the window */
	__u32 pad;
};

#endif
