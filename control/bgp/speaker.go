package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"go.uber.org/zap"
)

// Config is a speaker's configuration.
type Config struct {
	ASN      uint32
	RouterID netip.Addr
	Peers    []Peer
	// ListenPort accepts sessions on this port (0: none; the speaker
	// connects out to its peers, so nothing listens on :179 by default).
	ListenPort uint16
	// Hold is the hold time offered to peers: how long a router keeps the
	// routes of an instance that died without a word.
	Hold time.Duration
}

// Peer is a router to announce to.
type Peer struct {
	Addr netip.Addr
	ASN  uint32
	Port uint16 // 0: 179
}

// PeerStatus is a session as `bgp get` shows it.
type PeerStatus struct {
	Addr   netip.Addr
	ASN    uint32
	State  string // idle, connect, active, opensent, openconfirm, established
	Uptime time.Duration
}

// Speaker is an embedded GoBGP server that announces VIPs.
type Speaker struct {
	log *zap.Logger
	srv *server.BgpServer
	cfg Config

	stopWatch context.CancelFunc // ends the session log's watcher

	mu        sync.Mutex
	announced map[netip.Addr]bool
	frozen    bool // after WithdrawAll: nothing is announced any more
}

// Start runs a speaker and opens its sessions.
func Start(cfg Config, log *zap.Logger) (*Speaker, error) {
	log = log.Named("bgp")
	// GoBGP's own info lines repeat what logSessions and Announce say.
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn)
	srv := server.NewBgpServer(server.LoggerOption(slog.New(zapHandler{log: log, min: lvl}), lvl))
	go srv.Serve()
	port := int32(-1)
	if cfg.ListenPort != 0 {
		port = int32(cfg.ListenPort)
	}
	ctx := context.Background()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: cfg.ASN,
		RouterId: cfg.RouterID.String(), ListenPort: port}}); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("start bgp: %w", err)
	}
	s := &Speaker{log: log, srv: srv, cfg: cfg, announced: map[netip.Addr]bool{}}
	if err := s.logSessions(); err != nil {
		s.Stop()
		return nil, err
	}
	for _, p := range cfg.Peers {
		if err := s.addPeer(ctx, p); err != nil {
			s.Stop()
			return nil, err
		}
	}
	log.Info("bgp speaker started", zap.Uint32("asn", cfg.ASN), zap.Stringer("router_id", cfg.RouterID),
		zap.Int("peers", len(cfg.Peers)), zap.Duration("hold", cfg.Hold))
	return s, nil
}

// logSessions logs each session going up and down (not the connect
// retries in between: those would flood the log while a router is away).
func (s *Speaker) logSessions() error {
	up := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWatch = cancel
	err := s.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			if ev.Type != apiutil.PEER_EVENT_STATE {
				return
			}
			st := ev.Peer.State
			addr := st.NeighborAddress.String()
			now := st.SessionState == bgppkt.BGP_FSM_ESTABLISHED
			switch {
			case now && !up[addr]:
				s.log.Info("bgp session up", zap.String("peer", addr), zap.Uint32("peer_asn", st.PeerASN))
			case !now && up[addr]:
				reason := strings.ToLower(strings.TrimPrefix(st.DisconnectReason.String(), "DISCONNECT_REASON_"))
				s.log.Warn("bgp session down", zap.String("peer", addr), zap.String("reason", reason),
					zap.String("message", st.DisconnectMessage))
			}
			up[addr] = now
		}}, server.WatchPeer())
	if err != nil {
		return fmt.Errorf("watch bgp sessions: %w", err)
	}
	return nil
}

func (s *Speaker) addPeer(ctx context.Context, p Peer) error {
	hold := uint64(s.cfg.Hold / time.Second)
	peer := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Addr.String(), PeerAsn: p.ASN},
		Timers: &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: hold,
			KeepaliveInterval: max(hold/3, 1)}},
	}
	if p.Port != 0 {
		peer.Transport = &api.Transport{RemotePort: uint32(p.Port)}
	}
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}); err != nil {
		return fmt.Errorf("bgp peer %s: %w", p.Addr, err)
	}
	return nil
}

// Announce makes the announced VIPs exactly vips (each a /32, next hop
// the session's own address), announcing and withdrawing the difference.
// After WithdrawAll it does nothing.
func (s *Speaker) Announce(vips []netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frozen {
		return nil
	}
	want := map[netip.Addr]bool{}
	for _, v := range vips {
		want[v] = true
		if !s.announced[v] {
			if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path(v)}}); err != nil {
				return fmt.Errorf("announce %s: %w", v, err)
			}
			s.announced[v] = true
			s.log.Info("announced", zap.Stringer("vip", v))
		}
	}
	for v := range s.announced {
		if !want[v] {
			if err := s.withdraw(v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Speaker) withdraw(v netip.Addr) error {
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{path(v)}}); err != nil {
		return fmt.Errorf("withdraw %s: %w", v, err)
	}
	delete(s.announced, v)
	s.log.Info("withdrawn", zap.Stringer("vip", v))
	return nil
}

// WithdrawAll withdraws every VIP and announces nothing any more: the
// first step of a graceful stop.
func (s *Speaker) WithdrawAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = true
	for v := range s.announced {
		if err := s.withdraw(v); err != nil {
			return err
		}
	}
	return nil
}

func path(v netip.Addr) *apiutil.Path {
	nlri, _ := bgppkt.NewIPAddrPrefix(netip.PrefixFrom(v, 32))
	nh, _ := bgppkt.NewPathAttributeNextHop(netip.IPv4Unspecified()) // the session's own address
	return &apiutil.Path{Family: bgppkt.RF_IPv4_UC, Nlri: nlri,
		Attrs: []bgppkt.PathAttributeInterface{bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP), nh}}
}

// Announced lists the VIPs announced now, sorted.
func (s *Speaker) Announced() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.Addr, 0, len(s.announced))
	for v := range s.announced {
		out = append(out, v)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// Peers reports the sessions.
func (s *Speaker) Peers() ([]PeerStatus, error) {
	var out []PeerStatus
	err := s.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		st := PeerStatus{State: "unknown"}
		if p.Conf != nil {
			st.Addr, _ = netip.ParseAddr(p.Conf.NeighborAddress)
			st.ASN = p.Conf.PeerAsn
		}
		if p.State != nil {
			st.State = strings.ToLower(strings.TrimPrefix(p.State.SessionState.String(), "SESSION_STATE_"))
		}
		if st.State == "established" && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			st.Uptime = time.Since(p.Timers.State.Uptime.AsTime()).Round(time.Second)
		}
		out = append(out, st)
	})
	slices.SortFunc(out, func(a, b PeerStatus) int { return a.Addr.Compare(b.Addr) })
	return out, err
}

// Stop closes the sessions (a Cease notification: routers drop the
// routes at once) and the speaker.
func (s *Speaker) Stop() {
	if s.stopWatch != nil {
		s.stopWatch()
	}
	s.srv.Stop() // logs its own errors; there is nothing a caller could do
}
