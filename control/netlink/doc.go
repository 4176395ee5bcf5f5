// Package netlink finds interfaces, RX queue counts, routes and neighbour
// (ARP) entries, so the daemon knows where to send packets and with which
// destination MAC.
package netlink
