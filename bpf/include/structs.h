/* Structs shared with Go through bpf2go -type. Addresses and ports are in
 * network byte order, exactly as they appear in the packet. */
#ifndef SCMLB_STRUCTS_H
#define SCMLB_STRUCTS_H

#include <linux/types.h>

/* An L4 endpoint: a service VIP:port or a backend ip:port. */
struct endpoint {
	__u32 addr;
	__u16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

#endif
