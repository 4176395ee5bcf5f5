package api

import "github.com/scmlb-xsk/scmlb-xsk/control/config"

// DefaultSocket is where the daemon listens by default.
const DefaultSocket = "/run/scmlb-xsk/api.sock"

// HealthCheck is a service's backend probe (the state file's own form).
type HealthCheck = config.HealthCheck

// SetHealthRequest sets a service's health check; nil removes it.
type SetHealthRequest struct {
	Health *HealthCheck `json:"health"`
}

// Service is a VIP:port/proto with its backends and counters.
type Service struct {
	ID     uint32       `json:"id"`
	VIP    string       `json:"vip"`
	Port   uint16       `json:"port"`
	Proto  string       `json:"proto"`
	Mode   string       `json:"mode"` // nat, fullnat, dsr-l2 or dsr-ipip
	Health *HealthCheck `json:"health,omitempty"`
	// Fingerprint identifies the Maglev table: instances showing the same
	// send every flow of the service to the same backend.
	Fingerprint string    `json:"maglev_fingerprint"`
	Backends    []Backend `json:"backends"`
	Packets     uint64    `json:"packets"`
	Bytes       uint64    `json:"bytes"`
	ActiveConns uint64    `json:"active_connections"`
}

// Backend is a real server of a service.
type Backend struct {
	ID          uint32 `json:"id"`
	ServiceID   uint32 `json:"service_id"`
	Address     string `json:"address"` // ip:port
	Weight      uint32 `json:"weight"`
	Status      string `json:"status"` // "active" or "drained"
	Health      string `json:"health"` // "healthy", "unhealthy" or "unchecked"
	HealthError string `json:"health_error,omitempty"`
	MAC         string `json:"mac"`       // next hop, "" while unresolved
	NextHop     string `json:"next_hop"`  // "resolved", "pending", or "unresolved[: why]"
	NewFlows    bool   `json:"new_flows"` // false while drained, unhealthy or without a next hop
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
	Flows       uint64 `json:"flows"` // flows ever assigned
	ActiveConns uint64 `json:"active_connections"`
}

// AddServiceRequest creates a service.
type AddServiceRequest struct {
	VIP    string       `json:"vip"` // IP:PORT, [IPv6]:PORT
	Proto  string       `json:"proto"`
	Mode   string       `json:"mode,omitempty"` // "" is nat
	Health *HealthCheck `json:"health,omitempty"`
}

// AddBackendRequest adds a backend to a service.
type AddBackendRequest struct {
	ServiceID uint32 `json:"service_id"`
	Address   string `json:"address"` // IP[:PORT] or [IPv6]:PORT; port defaults to the service's
	Weight    uint32 `json:"weight"`  // 0 means 1
}

// Flow is one conntrack entry.
type Flow struct {
	Proto       string  `json:"proto"`
	Client      string  `json:"client"`
	VIP         string  `json:"vip"`
	Backend     string  `json:"backend"`
	BackendID   uint32  `json:"backend_id"`
	SNAT        string  `json:"snat,omitempty"`    // full-NAT: the client address and port the backend sees
	OneWay      bool    `json:"one_way,omitempty"` // DSR: replies bypass the load balancer
	State       string  `json:"state"`
	IdleSeconds float64 `json:"idle_seconds"`
	Packets     uint64  `json:"packets"`
	Bytes       uint64  `json:"bytes"`
}

// Counter is packets and bytes.
type Counter struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Stats is everything `stat` shows.
type Stats struct {
	Protocols   map[string]Counter `json:"protocols"`    // XDP per-protocol counters
	XDPVerdicts map[string]Counter `json:"xdp_verdicts"` // pass, steer_service, ...
	Dataplane   DataplaneStats     `json:"dataplane"`
	Drops       map[string]uint64  `json:"drops"` // worker drops by reason
	Conntrack   ConntrackStats     `json:"conntrack"`
	Services    []Service          `json:"services"`
	Sockets     []SocketStats      `json:"sockets"`
}

// DataplaneStats are the workers' packet counts.
type DataplaneStats struct {
	RxPackets uint64 `json:"rx_packets"`
	Forwarded uint64 `json:"forwarded"`
	Replied   uint64 `json:"replied"`
	NewFlows  uint64 `json:"new_flows"`
	// RebuiltFlows are the new flows rebuilt from a backend's packet, after
	// a restart emptied conntrack.
	RebuiltFlows uint64 `json:"rebuilt_flows"`
	// EchoReplies answered pings to VIPs; ICMPTranslated are errors of
	// tracked flows passed on; FragNeededSent are errors the load balancer
	// sent for packets too large for the next link.
	EchoReplies    uint64 `json:"echo_replies"`
	ICMPTranslated uint64 `json:"icmp_translated"`
	FragNeededSent uint64 `json:"frag_needed_sent"`
	// Express are the packets, of those forwarded and replied, that the
	// worker's express path handled (docs/architecture.md).
	Express uint64 `json:"express"`
	// SNATPortsInUse are full-NAT source ports held by tracked flows.
	SNATPortsInUse int `json:"snat_ports_in_use"`
}

// ConntrackStats are the flow table's size and events.
type ConntrackStats struct {
	Entries    int    `json:"entries"`
	Capacity   int    `json:"capacity"`
	Inserts    uint64 `json:"inserts"`
	Evictions  uint64 `json:"evictions"`
	Expired    uint64 `json:"expired"`
	Collisions uint64 `json:"collisions"`
	// IgnoredRSTs are RSTs outside the window: forwarded, flow kept.
	IgnoredRSTs uint64 `json:"ignored_rsts"`
}

// SocketStats are one AF_XDP socket's ring counters.
type SocketStats struct {
	Interface string `json:"interface"`
	Queue     int    `json:"queue"`
	// Mode is "zerocopy" or "copy" (the driver refused zero-copy, or
	// generic XDP); SharedUMEM says the worker's two sockets share one
	// UMEM, so forwarding between the NICs copies nothing.
	Mode          string `json:"mode"`
	SharedUMEM    bool   `json:"shared_umem"`
	Kicks         uint64 `json:"kicks"`      // TX sendto calls (need_wakeup: only when the ring asked)
	RxWakeups     uint64 `json:"rx_wakeups"` // recvfrom calls the fill ring asked for
	RxPackets     uint64 `json:"rx_packets"`
	TxPackets     uint64 `json:"tx_packets"`
	TxRingFull    uint64 `json:"tx_ring_full"`
	NoFreeFrame   uint64 `json:"no_free_frame"`
	KickErrors    uint64 `json:"kick_errors"`
	RxDropped     uint64 `json:"rx_dropped"`      // kernel: no room in the RX ring or UMEM
	RxRingFull    uint64 `json:"rx_ring_full"`    // kernel
	FillRingEmpty uint64 `json:"fill_ring_empty"` // kernel
	InvalidDescs  uint64 `json:"invalid_descs"`   // kernel, RX + TX
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// FirewallRule is a deny rule with its drop counters.
type FirewallRule struct {
	ID             uint32 `json:"id"`
	Network        string `json:"network"`
	Proto          string `json:"proto"`
	SrcPorts       string `json:"src_ports"`
	DstPorts       string `json:"dst_ports"`
	DroppedPackets uint64 `json:"dropped_packets"`
	DroppedBytes   uint64 `json:"dropped_bytes"`
}

// AddFirewallRuleRequest creates a rule; empty ports and proto mean any.
type AddFirewallRuleRequest struct {
	Network  string `json:"network"`
	Proto    string `json:"proto"`
	SrcPorts string `json:"src_ports"`
	DstPorts string `json:"dst_ports"`
}

// DosPolicy is a DoS protection policy and the sources it blocks now.
type DosPolicy struct {
	ID             uint32          `json:"id"`
	Proto          string          `json:"proto"`
	Type           string          `json:"type"`
	LimitPPS       uint32          `json:"limit_pps"`
	BlockSeconds   uint32          `json:"block_seconds"`
	Status         string          `json:"status"` // "triggered" or "not triggered"
	Blocked        []BlockedSource `json:"blocked"`
	DroppedPackets uint64          `json:"dropped_packets"`
	DroppedBytes   uint64          `json:"dropped_bytes"`
}

// BlockedSource is a source address a policy drops.
type BlockedSource struct {
	Address          string  `json:"address"`
	RemainingSeconds float64 `json:"remaining_seconds"`
}

// AddDosPolicyRequest creates a policy.
type AddDosPolicyRequest struct {
	Proto        string `json:"proto"`
	Type         string `json:"type"` // "" means any
	LimitPPS     uint32 `json:"limit_pps"`
	BlockSeconds uint32 `json:"block_seconds"`
}

// ApplyRequest carries a declarative document (docs/examples/lb.yaml);
// with DryRun nothing changes.
type ApplyRequest struct {
	YAML   string `json:"yaml"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// ApplyResult is the plan of an apply, and whether it was applied.
type ApplyResult struct {
	Changes  []string      `json:"changes"` // "+ service ...", "- backend ...", "~ ..."
	Services []ServicePlan `json:"services"`
	Applied  bool          `json:"applied"`
}

// ServicePlan is what a plan does to one service: MovedShare is the share
// of the new-flow hash space whose backend changes (from the current and
// the planned Maglev tables, with today's health and next hops);
// PinnedFlows are tracked flows on backends the plan removes.
type ServicePlan struct {
	Service     string  `json:"service"`
	Status      string  `json:"status"` // added, removed, changed, unchanged
	MovedShare  float64 `json:"moved_share"`
	PinnedFlows int     `json:"pinned_flows"`
}

// Export is the current state as a declarative document.
type Export struct {
	YAML string `json:"yaml"`
}

// TraceRequest names a flow as a client sends it: "tcp", "198.51.100.7:40000", "10.0.100.1:80".
type TraceRequest struct {
	Proto string `json:"proto"`
	Src   string `json:"src"`
	Dst   string `json:"dst"`
}

// Trace is what the load balancer does with a flow's next client packet,
// step by step, from the live tables.
type Trace struct {
	Flow string `json:"flow"`
	// Firewall: the rule that drops the flow's packets, 0 for none.
	FirewallRule uint32 `json:"firewall_rule"`
	Firewall     string `json:"firewall"`
	// DoS: the policies blocking the source now.
	DoSBlocked []uint32 `json:"dos_blocked"`
	DoS        string   `json:"dos"`
	// XDP: the action the loaded program took on a synthetic packet of the
	// flow (BPF_PROG_TEST_RUN): XDP_REDIRECT (to a worker), XDP_PASS,
	// XDP_DROP.
	XDPAction string `json:"xdp_action"`
	XDP       string `json:"xdp"`
	// The service at the destination, if any.
	ServiceID uint32 `json:"service_id,omitempty"`
	Service   string `json:"service,omitempty"`
	Mode      string `json:"mode,omitempty"`
	// Conntrack: the tracked flow, or nil for a new flow.
	Conntrack *Flow `json:"conntrack,omitempty"`
	// The backend: the tracked flow's, or Maglev's pick for a new flow.
	BackendID uint32 `json:"backend_id,omitempty"`
	Backend   string `json:"backend,omitempty"`
	Pick      string `json:"pick,omitempty"` // "tracked flow" or "maglev (new flow)"
	// The rewrite the worker applies.
	Rewrite *Rewrite `json:"rewrite,omitempty"`
	Verdict string   `json:"verdict"` // one line: what happens
}

// Rewrite is a forwarded packet's new addresses and MACs.
type Rewrite struct {
	Src    string `json:"src"`
	Dst    string `json:"dst"`
	SrcMAC string `json:"src_mac"`
	DstMAC string `json:"dst_mac"`
}
