// Package fwdmode is a service's forwarding mode as one typed value, shared
// by config, the dataplane and the daemon.
package fwdmode

import (
	"fmt"
	"strings"
)

// Mode is how a service's packets reach its backends and come back.
type Mode uint8

const (
	// NAT rewrites the destination to the backend; replies come back
	// through the load balancer, which rewrites their source to the VIP.
	NAT Mode = iota
	// FullNAT also rewrites the source to a load-balancer address and port,
	// so backends need no route to the clients.
	FullNAT
	// DSRL2 changes only the destination MAC; backends hold the VIP and
	// answer clients directly.
	DSRL2
	// DSRIPIP encapsulates the packet in an outer IPv4 header to the
	// backend, which decapsulates and answers clients directly.
	DSRIPIP
	numModes
)

var names = [numModes]string{"nat", "fullnat", "dsr-l2", "dsr-ipip"}

func (m Mode) String() string {
	if m < numModes {
		return names[m]
	}
	return fmt.Sprintf("mode-%d", uint8(m))
}

// Parse reads a mode name in any letter case; "" is nat.
func Parse(s string) (Mode, error) {
	if s == "" {
		return NAT, nil
	}
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("mode %q: want nat, fullnat, dsr-l2 or dsr-ipip", s)
}

// DSR is true for the modes whose replies bypass the load balancer.
func (m Mode) DSR() bool { return m == DSRL2 || m == DSRIPIP }

// MarshalText writes the name, as the state file keeps it.
func (m Mode) MarshalText() ([]byte, error) {
	if m >= numModes {
		return nil, fmt.Errorf("mode %d has no name", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText reads a name in any letter case.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
