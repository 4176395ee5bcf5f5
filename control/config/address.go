package config

import (
	"fmt"
	"net/netip"
)

var (
	v4Mapped    = netip.MustParsePrefix("::ffff:0.0.0.0/96")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	reserved    = netip.MustParsePrefix("240.0.0.0/4")
	broadcast   = netip.MustParseAddr("255.255.255.255")
)

// CheckUnicast refuses addresses a VIP or backend can never be: packets to
// them are not unicast traffic a load balancer can forward. what names the
// role in the error ("VIP", "backend").
func CheckUnicast(a netip.Addr, what string) error {
	bad := ""
	switch {
	case !a.IsValid():
		bad = "not an IP address"
	case a.Is6() && a.Zone() != "":
		bad = "scoped (a zone is not an address of its own)"
	case v4Mapped.Contains(a.WithZone("")):
		bad = fmt.Sprintf("IPv4-mapped: write %s", a.Unmap())
	case a.Is6() && a.IsUnspecified():
		bad = "unspecified (::)"
	case a.Is6() && a.IsLoopback():
		bad = "the loopback address (::1)"
	case a.Is6() && a.IsMulticast():
		bad = "a multicast address (ff00::/8)"
	case a.Is6() && a.IsLinkLocalUnicast():
		bad = "a link-local address (fe80::/10)"
	case a.Is6():
	case a.IsUnspecified() || thisNetwork.Contains(a):
		bad = "unspecified (0.0.0.0/8)"
	case a == broadcast:
		bad = "the limited broadcast address"
	case a.IsLoopback():
		bad = "a loopback address"
	case a.IsMulticast():
		bad = "a multicast address"
	case a.IsLinkLocalUnicast():
		bad = "a link-local address"
	case reserved.Contains(a):
		bad = "reserved (240.0.0.0/4)"
	}
	if bad != "" {
		return fmt.Errorf("%w: %s %s is %s", ErrInvalid, what, a, bad)
	}
	return nil
}

// Family names an address's family for errors.
func Family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
