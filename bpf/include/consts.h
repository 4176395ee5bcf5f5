/* Limits and enums shared by the XDP program and its Go loader. */
#ifndef SCMLB_CONSTS_H
#define SCMLB_CONSTS_H

/* ICMP types (linux/icmp.h pulls in libc headers the BPF target lacks). */
#define ICMP_ECHO 8
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAM_PROBLEM 12

/* ICMPv6 types (RFC 4443). Errors are 1-4; NDP (133-137) is never steered. */
#define ICMPV6_ERR_MIN 1
#define ICMPV6_ERR_MAX 4
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_NDP_MIN 133 /* router solicitation ... */
#define ICMPV6_NDP_MAX 137 /* ... redirect */

/* IPv6 extension headers walked over, and the fragment header. */
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60
#define MAX_EXT_HEADERS 4 /* more before the upper layer: malformed */

/* IPv4 frag_off bits (host order), from include/net/ip.h which is not UAPI. */
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

#ifndef MAX_QUEUES
#define MAX_QUEUES 64 /* XSKMAP slots: one AF_XDP socket per RX queue */
#endif

#ifndef MAX_IFACES
#define MAX_IFACES 4 /* interfaces with sockets: upstream and backend NIC */
#endif

#ifndef MAX_SERVICES
#define MAX_SERVICES 4096
#endif

#ifndef MAX_BACKENDS
#define MAX_BACKENDS 65536 /* distinct backend ip:port/proto endpoints, all services */
#endif

#ifndef MAX_BACKENDS_PER_SERVICE
#define MAX_BACKENDS_PER_SERVICE 1024 /* bounds a service's Maglev table (100 slots each) */
#endif

#ifndef MAX_SNAT_ADDRS
#define MAX_SNAT_ADDRS 16 /* full-NAT source addresses */
#endif

#ifndef MAX_LOCAL_ADDRS
#define MAX_LOCAL_ADDRS 256 /* the host's own IPv4 and IPv6 addresses */
#endif

#ifndef MAX_FW_RULES
#define MAX_FW_RULES 1024
#endif

#ifndef MAX_RULES_PER_PREFIX
#define MAX_RULES_PER_PREFIX 16 /* rules whose CIDR contains one rule prefix */
#endif

#ifndef MAX_DOS_POLICIES
#define MAX_DOS_POLICIES 16
#endif

#ifndef MAX_DOS_SOURCES
#define MAX_DOS_SOURCES 65536 /* tracked (source, policy) pairs; LRU beyond */
#endif

/* The limits above as one enum, so that bpf2go hands them to Go as
 * constants: the daemon enforces exactly what the maps hold. */
enum limits {
	LIMIT_QUEUES = MAX_QUEUES,
	LIMIT_IFACES = MAX_IFACES,
	LIMIT_SERVICES = MAX_SERVICES,
	LIMIT_BACKENDS = MAX_BACKENDS,
	LIMIT_BACKENDS_PER_SERVICE = MAX_BACKENDS_PER_SERVICE,
	LIMIT_LOCAL_ADDRS = MAX_LOCAL_ADDRS,
	LIMIT_SNAT_ADDRS = MAX_SNAT_ADDRS,
	LIMIT_FW_RULES = MAX_FW_RULES,
	LIMIT_RULES_PER_PREFIX = MAX_RULES_PER_PREFIX,
	LIMIT_DOS_POLICIES = MAX_DOS_POLICIES,
	LIMIT_DOS_SOURCES = MAX_DOS_SOURCES,
};

/* Index into proto_stats: what the packet was. */
enum proto_idx {
	PROTO_NON_IP = 0, /* ARP, VLAN-tagged ...: always XDP_PASS */
	PROTO_IPV4_OTHER = 1,
	PROTO_ICMP = 2,
	PROTO_TCP = 3,
	PROTO_UDP = 4,
	PROTO_IPV6_OTHER = 5, /* and malformed IPv6 */
	PROTO_ICMPV6 = 6,
	PROTO_TCP6 = 7,
	PROTO_UDP6 = 8,
	PROTO_MAX = 9,
};

/* Index into verdict_stats: what the program did with it. */
enum verdict {
	VERDICT_PASS = 0,          /* not ours: kernel stack */
	VERDICT_STEER_SERVICE = 1, /* to VIP:port, sent to the AF_XDP socket */
	VERDICT_STEER_REPLY = 2,   /* from a backend ip:port, sent to the AF_XDP socket */
	VERDICT_NO_SOCKET = 3,     /* ours, but no socket on this queue (or queue >= MAX_QUEUES): passed */
	VERDICT_MALFORMED = 4,     /* truncated, bad IHL, too many IPv6 extension headers: passed */
	VERDICT_FRAGMENT = 5,      /* IPv4 fragment or IPv6 fragment header: passed, no reassembly in userspace */
	VERDICT_FW_DROP = 6,       /* matched a firewall rule: XDP_DROP */
	VERDICT_DOS_DROP = 7,      /* source over a DoS policy limit, or blocked: XDP_DROP */
	VERDICT_HELD = 8,          /* steered while held across a restart (no worker yet): XDP_DROP */
	VERDICT_MAX = 9,
};

#endif
