// Package daemon wires the XDP program, the AF_XDP sockets and the dataplane
// workers together, keeps next-hop MACs fresh, expires conntrack entries,
// and undoes all of it on shutdown.
package daemon
