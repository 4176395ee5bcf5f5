package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// router is a second GoBGP instance on loopback playing the router: it
// listens, and reports the routes it learned.
type router struct{ srv *server.BgpServer }

func newRouter(t *testing.T, asn, peerASN uint32) (*router, uint16) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	srv := server.NewBgpServer()
	go srv.Serve()
	ctx := context.Background()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: asn, RouterId: "10.255.0.1",
		ListenPort: int32(port), ListenAddresses: []string{"127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: peerASN},
		Transport: &api.Transport{PassiveMode: true},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return &router{srv: srv}, port
}

// routes are the prefixes the router learned, with their next hop.
func (r *router) routes() map[string]string {
	out := map[string]string{}
	r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgppkt.RF_IPv4_UC},
		func(prefix bgppkt.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				for _, a := range p.Attrs {
					if nh, ok := a.(*bgppkt.PathAttributeNextHop); ok {
						out[prefix.String()] = nh.Value.String()
					}
				}
			}
		})
	return out
}

func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAnnounceAndWithdraw(t *testing.T) {
	r, port := newRouter(t, 65000, 65001)
	s, err := Start(Config{ASN: 65001, RouterID: netip.MustParseAddr("10.0.5.11"), Hold: 3 * time.Second,
		Peers: []Peer{{Addr: netip.MustParseAddr("127.0.0.1"), ASN: 65000, Port: port}}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	waitFor(t, "session", func() error {
		ps, err := s.Peers()
		if err != nil || len(ps) != 1 || ps[0].State != "established" || ps[0].ASN != 65000 {
			return fmt.Errorf("peers %+v %v", ps, err)
		}
		return nil
	})
	a, b := netip.MustParseAddr("10.0.100.1"), netip.MustParseAddr("10.0.100.2")
	if err := s.Announce([]netip.Addr{b, a}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"10.0.100.1/32": "127.0.0.1", "10.0.100.2/32": "127.0.0.1"}
	waitFor(t, "both VIPs learned, next hop the session's address", func() error {
		if got := r.routes(); fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("router has %v", got)
		}
		return nil
	})
	if got := s.Announced(); !slices.Equal(got, []netip.Addr{a, b}) {
		t.Fatalf("announced %v", got)
	}
	if err := s.Announce([]netip.Addr{a}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second VIP withdrawn", func() error {
		if got := r.routes(); len(got) != 1 || got["10.0.100.1/32"] == "" {
			return fmt.Errorf("router has %v", got)
		}
		return nil
	})
	if err := s.WithdrawAll(); err != nil {
		t.Fatal(err)
	}
	s.Announce([]netip.Addr{a, b}) // a graceful stop is under way: ignored
	waitFor(t, "everything withdrawn", func() error {
		if got := r.routes(); len(got) != 0 {
			return fmt.Errorf("router has %v", got)
		}
		return nil
	})
	if len(s.Announced()) != 0 {
		t.Fatal("announced after WithdrawAll")
	}
}

// A listen port someone else holds fails the start with the reason, and
// leaves nothing running.
func TestListenPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	s, err := Start(Config{ASN: 65001, RouterID: netip.MustParseAddr("10.0.5.11"), ListenPort: port, Hold: 3 * time.Second,
		Peers: []Peer{{Addr: netip.MustParseAddr("127.0.0.1"), ASN: 65000}}}, zap.NewNop())
	if err == nil {
		s.Stop()
		t.Fatalf("started on port %d, which is in use", port)
	}
	t.Log(err)
}

// Stopping a speaker logs no error (GoBGP's Stop stops the BGP server
// itself; stopping it first made Stop log "BGP server is not running").
func TestStopIsQuiet(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	s, err := Start(Config{ASN: 65001, RouterID: netip.MustParseAddr("10.0.5.11"), Hold: 3 * time.Second,
		Peers: []Peer{{Addr: netip.MustParseAddr("127.0.0.1"), ASN: 65000, Port: 1}}}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	for _, e := range logs.All() {
		t.Errorf("stop logged %s: %s %v", e.Level, e.Message, e.Context)
	}
}
