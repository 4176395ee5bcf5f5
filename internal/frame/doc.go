// Package frame builds Ethernet frames (IPv4 or IPv6, TCP, UDP, ICMP,
// ICMPv6, extension headers) with correct checksums, and verifies a
// frame's checksums: for tests (through package fixture) and for the
// synthetic packet of a trace.
package frame
