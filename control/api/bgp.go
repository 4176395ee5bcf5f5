package api

import "net/http"

// BGPSettings are the BGP settings as the API takes and shows them.
type BGPSettings struct {
	ASN      uint32 `json:"asn"`
	RouterID string `json:"router_id"`
	// Peers are "ADDR[:ASN]"; a peer without an ASN is in ours (iBGP).
	Peers []string `json:"peers"`
	// ListenPort also accepts sessions on this port (0: connect out only).
	ListenPort uint16 `json:"listen_port,omitempty"`
	// HoldSeconds is offered to the peers (0: the default, 9).
	HoldSeconds uint32 `json:"hold_seconds,omitempty"`
}

// BGP is what `bgp get` shows.
type BGP struct {
	Settings *BGPSettings `json:"settings"` // null: BGP is off
	// Announcing is false before XDP is attached and during a graceful stop.
	Announcing bool      `json:"announcing"`
	Peers      []BGPPeer `json:"peers"`
	Announced  []string  `json:"announced"` // prefixes, "10.0.100.1/32"
}

// BGPPeer is a session with a router.
type BGPPeer struct {
	Address       string `json:"address"`
	ASN           uint32 `json:"asn"`
	State         string `json:"state"` // idle, connect, active, opensent, openconfirm, established
	UptimeSeconds uint64 `json:"uptime_seconds"`
}

// BGP reports the settings, the sessions and the announced prefixes.
func (c *Client) BGP() (BGP, error) {
	var out BGP
	return out, c.do(http.MethodGet, "/v1/bgp", nil, &out)
}

// SetBGP sets the BGP settings and (re)starts the speaker with them.
func (c *Client) SetBGP(s BGPSettings) error {
	return c.do(http.MethodPut, "/v1/bgp", s, nil)
}

// DeleteBGP turns BGP off: the speaker stops, routers drop its routes.
func (c *Client) DeleteBGP() error {
	return c.do(http.MethodDelete, "/v1/bgp", nil, nil)
}
