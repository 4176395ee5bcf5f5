/* Maps of the XDP program. Key -> value, and who writes it. */
#ifndef SCMLB_MAPS_H
#define SCMLB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "consts.h"
#include "structs.h"

/* enum proto_idx -> struct counter, per CPU. Written by XDP, read by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROTO_MAX);
	__type(key, __u32);
	__type(value, struct counter);
} proto_stats SEC(".maps");

/* enum verdict -> struct counter, per CPU. Written by XDP, read by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VERDICT_MAX);
	__type(key, __u32);
	__type(value, struct counter);
} verdict_stats SEC(".maps");

/* Service VIP:port/proto -> service id. Written by the daemon. Packets to it are steered. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct endpoint);
	__type(value, __u32);
} services SEC(".maps");

/* Backend ip:port/proto -> service id. Written by the daemon. Replies from it are steered. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, struct endpoint);
	__type(value, __u32);
} backends SEC(".maps");

/* VIP address -> 1. Written by the daemon. ICMP(v6) echo requests to a
 * VIP, and ICMP(v6) errors about a VIP's packets, are steered. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct addr);
	__type(value, __u8);
} vips SEC(".maps");

/* Full-NAT source address -> 1. Written by the daemon. Backend replies
 * to it within [snat_port_lo, snat_port_hi] are steered even though it is
 * the host's own address; the host's other traffic is not. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SNAT_ADDRS);
	__type(key, struct addr);
	__type(value, __u8);
} snat_addrs SEC(".maps");

/* Backend address -> its next-hop MAC. Written by the daemon. Traffic
 * from it (replies, answers to health probes) is not client traffic: the
 * filters skip it when it arrives on backend_ifindex from that MAC. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, struct addr);
	__type(value, struct backend_host);
} backend_hosts SEC(".maps");

/* Address of this host (IPv4 or IPv6) -> 1. Written by the daemon.
 * Packets to them are the host's own (health probes, an operator's curl):
 * they are never steered, even when they come from a backend ip:port. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_LOCAL_ADDRS);
	__type(key, struct addr);
	__type(value, __u8);
} local_addrs SEC(".maps");

/* ifindex -> interface slot (< MAX_IFACES). Written by the daemon. A missing
 * ifindex uses slot 0. Each NIC needs its own XSKMAP range because a socket
 * only accepts packets from the device and queue it is bound to. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} if_slots SEC(".maps");

/* slot * MAX_QUEUES + RX queue index -> AF_XDP socket. Written by the daemon
 * when a worker starts. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES * MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Slot 0: the capture filter. Written by the daemon while a dump runs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dump_cfg);
} dump_config SEC(".maps");

/* Captured packets to the daemon, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} dump_events SEC(".maps");

/* Rule prefix -> the rules to check. Written by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_FW_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, struct rule_set);
} fw_prefixes SEC(".maps");

/* IPv6 rule prefix -> the rules to check. Written by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_FW_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v6_key);
	__type(value, struct rule_set);
} fw_prefixes6 SEC(".maps");

/* Rule slot -> rule. Written by the daemon; a slot keeps its rule for the
 * rule's lifetime, so its counter stays meaningful. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_FW_RULES);
	__type(key, __u32);
	__type(value, struct fw_rule);
} fw_rules SEC(".maps");

/* Rule slot -> packets and bytes dropped, per CPU. Written by XDP. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_FW_RULES);
	__type(key, __u32);
	__type(value, struct counter);
} fw_drops SEC(".maps");

/* Policy slot -> policy. Written by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_DOS_POLICIES);
	__type(key, __u32);
	__type(value, struct dos_policy);
} dos_policies SEC(".maps");

/* Policy slot -> packets and bytes dropped, per CPU. Written by XDP. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_DOS_POLICIES);
	__type(key, __u32);
	__type(value, struct counter);
} dos_drops SEC(".maps");

/* (source, policy) -> rate window and block state. Written by XDP; read
 * (and cleared on policy change) by the daemon. LRU, so a flood from many
 * spoofed sources cannot exhaust it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_DOS_SOURCES);
	__type(key, struct dos_key);
	__type(value, struct dos_state);
} dos_sources SEC(".maps");

/* (IPv6 source, policy) -> the same, for IPv6 sources. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_DOS_SOURCES);
	__type(key, struct dos_key6);
	__type(value, struct dos_state);
} dos_sources6 SEC(".maps");

#endif
