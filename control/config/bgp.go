package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// BGP is how the VIPs are announced to routers; nil in a State: not at all.
type BGP struct {
	ASN         uint32     `json:"asn"`
	RouterID    netip.Addr `json:"router_id"`
	Peers       []BGPPeer  `json:"peers"`
	ListenPort  uint16     `json:"listen_port,omitempty"` // 0: connect out only
	HoldSeconds uint32     `json:"hold_seconds"`          // what a router waits before dropping a silent instance
}

// BGPPeer is a router, reached on TCP port 179.
type BGPPeer struct {
	Addr netip.Addr `json:"addr"`
	ASN  uint32     `json:"asn"`
}

// String is "ADDR:ASN", as ParseBGPPeer reads it.
func (p BGPPeer) String() string { return fmt.Sprintf("%s:%d", p.Addr, p.ASN) }

// DefaultHoldSeconds trades how fast a router drops a killed instance
// (its flows blackholed meanwhile) against how many keepalives a busy or
// briefly stalled instance may miss (3 at hold/3) before it is dropped.
const DefaultHoldSeconds = 9

// ParseBGPPeer reads "ADDR[:ASN]"; without an ASN the peer is in localASN (iBGP).
func ParseBGPPeer(s string, localASN uint32) (BGPPeer, error) {
	addr, asn, hasASN := strings.Cut(s, ":")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return BGPPeer{}, fmt.Errorf("%w: bgp peer %q: want IPv4[:ASN]", ErrInvalid, s)
	}
	p := BGPPeer{Addr: a, ASN: localASN}
	if hasASN {
		n, err := strconv.ParseUint(asn, 10, 32)
		if err != nil {
			return BGPPeer{}, fmt.Errorf("%w: bgp peer %q: ASN %q is not a number", ErrInvalid, s, asn)
		}
		p.ASN = uint32(n)
	}
	return p, nil
}

func checkASN(asn uint32, what string) error {
	if asn == 0 || asn == 23456 { // 23456 is AS_TRANS (RFC 6793)
		return fmt.Errorf("%w: %s ASN %d: want 1 to 4294967295, not 23456", ErrInvalid, what, asn)
	}
	return nil
}

func (b *BGP) validate() error {
	if b == nil {
		return nil
	}
	if err := checkASN(b.ASN, "local"); err != nil {
		return err
	}
	if !b.RouterID.Is4() || b.RouterID.IsUnspecified() {
		return fmt.Errorf("%w: bgp router id %s: want an IPv4 address", ErrInvalid, b.RouterID)
	}
	if len(b.Peers) == 0 {
		return fmt.Errorf("%w: bgp needs at least one peer", ErrInvalid)
	}
	seen := map[netip.Addr]bool{}
	for _, p := range b.Peers {
		if err := CheckUnicast(p.Addr, "bgp peer"); err != nil && !p.Addr.IsLoopback() {
			return err
		}
		if err := checkASN(p.ASN, "peer "+p.Addr.String()); err != nil {
			return err
		}
		if seen[p.Addr] {
			return fmt.Errorf("%w: bgp peer %s given twice", ErrInvalid, p.Addr)
		}
		seen[p.Addr] = true
	}
	if b.HoldSeconds < 3 || b.HoldSeconds > 65535 {
		return fmt.Errorf("%w: bgp hold time %ds: want 3s to 65535s (RFC 4271)", ErrInvalid, b.HoldSeconds)
	}
	return nil
}

// Equal reports whether two BGP configurations are the same (nil: none).
func (b *BGP) Equal(o *BGP) bool {
	if b == nil || o == nil {
		return b == o
	}
	return b.ASN == o.ASN && b.RouterID == o.RouterID && b.ListenPort == o.ListenPort &&
		b.HoldSeconds == o.HoldSeconds && slices.Equal(b.Peers, o.Peers)
}

// SetBGP sets or (nil) removes the BGP configuration.
func (s *State) SetBGP(b *BGP) error {
	if err := b.validate(); err != nil {
		return err
	}
	s.BGP = b.clone()
	return nil
}

// clone is a deep copy (nil stays nil).
func (b *BGP) clone() *BGP {
	if b == nil {
		return nil
	}
	c := *b
	c.Peers = slices.Clone(b.Peers)
	return &c
}

// ParseBGP builds and checks BGP settings from their text form (flags, the
// API); peers are "ADDR[:ASN]", hold 0 means DefaultHoldSeconds.
func ParseBGP(asn uint32, routerID string, peers []string, listenPort uint16, holdSeconds uint32) (*BGP, error) {
	id, err := netip.ParseAddr(routerID)
	if err != nil {
		return nil, fmt.Errorf("%w: bgp router id %q: want an IPv4 address", ErrInvalid, routerID)
	}
	b := &BGP{ASN: asn, RouterID: id, ListenPort: listenPort, HoldSeconds: holdSeconds}
	if b.HoldSeconds == 0 {
		b.HoldSeconds = DefaultHoldSeconds
	}
	for _, p := range peers {
		peer, err := ParseBGPPeer(p, asn)
		if err != nil {
			return nil, err
		}
		b.Peers = append(b.Peers, peer)
	}
	return b, b.validate()
}
