package config

import (
	"fmt"
	"net/netip"
)

var (
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
	case !a.Is4():
		bad = "not IPv4 (only IPv4 is supported)"
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
