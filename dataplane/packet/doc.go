// Package packet decodes Ethernet/IPv4/TCP/UDP frames in place into a reusable
// struct without allocating, and rewrites addresses, ports and MACs with
// incremental checksum updates.
package packet
