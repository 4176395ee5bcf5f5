// Package ipproto is the IP protocol as one typed value, parsed once at the
// edge (API, flags, state file) and shared by config, the XDP maps and the
// dataplane, so nothing downstream compares protocol strings.
package ipproto

import (
	"fmt"
	"strings"
)

// Proto is an IP protocol number. Any (0) is only meaningful for filters.
type Proto uint8

// The protocols the load balancer knows.
const (
	Any    Proto = 0
	ICMP   Proto = 1
	TCP    Proto = 6
	UDP    Proto = 17
	ICMPv6 Proto = 58
)

var names = map[Proto]string{Any: "any", ICMP: "icmp", TCP: "tcp", UDP: "udp", ICMPv6: "icmpv6"}

// String is the lower-case name, or the number for others.
func (p Proto) String() string {
	if n, ok := names[p]; ok {
		return n
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// Parse reads a protocol name in any letter case: any, icmp, icmpv6, tcp or udp.
func Parse(s string) (Proto, error) {
	for p, n := range names {
		if strings.EqualFold(s, n) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("protocol %q: want any, icmp, icmpv6, tcp or udp", s)
}

// ParseL4 reads a protocol a service can have: tcp or udp, any letter case.
func ParseL4(s string) (Proto, error) {
	p, err := Parse(s)
	if err != nil || !p.IsL4() {
		return 0, fmt.Errorf("protocol %q: want tcp or udp", s)
	}
	return p, nil
}

// IsICMP is true for ICMP and ICMPv6.
func (p Proto) IsICMP() bool { return p == ICMP || p == ICMPv6 }

// IsL4 is true for TCP and UDP, the protocols with ports.
func (p Proto) IsL4() bool { return p == TCP || p == UDP }

// MarshalText writes the canonical name, as the state file keeps it.
func (p Proto) MarshalText() ([]byte, error) {
	if _, ok := names[p]; !ok {
		return nil, fmt.Errorf("protocol %d has no name", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText reads a name in any letter case.
func (p *Proto) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
