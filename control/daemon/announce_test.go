package daemon

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/bgp"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// The BGP decision is a pure function of the state, health, drain and
// next hops: a VIP is announced while one of its services has a backend
// that takes new flows.
func TestAnnounceDecision(t *testing.T) {
	vip2 := netip.MustParseAddr("10.0.100.2")
	vip3 := netip.MustParseAddr("10.0.100.3")
	// vip  :80 backends 1 (b1), 2 (b2); :53 backend 3 (b3)
	// vip2 :80 backend 4 (b1)
	// vip3 :80 no backend
	st := config.NewState()
	web, _ := st.AddService(tVIP, 80, ipproto.TCP, fwdmode.DSRL2, nil)
	st.AddBackend(web.ID, tB1, 0, 1)
	st.AddBackend(web.ID, tB2, 0, 1)
	dns, _ := st.AddService(tVIP, 53, ipproto.UDP, fwdmode.DSRL2, nil)
	st.AddBackend(dns.ID, tB3, 0, 1)
	other, _ := st.AddService(vip2, 80, ipproto.TCP, fwdmode.DSRL2, nil)
	st.AddBackend(other.ID, tB1, 0, 1)
	st.AddService(vip3, 80, ipproto.TCP, fwdmode.DSRL2, nil)
	// An IPv6 service with a serving backend: never announced (IPv4 /32s only).
	v6, _ := st.AddService(netip.MustParseAddr("2001:db8:100::1"), 80, ipproto.TCP, fwdmode.NAT, nil)
	st.AddBackend(v6.ID, netip.MustParseAddr("2001:db8:2::11"), 0, 1)

	for _, c := range []struct {
		name       string
		unhealthy  []uint32
		drained    []uint32
		unresolved []netip.Addr
		want       []netip.Addr
	}{
		{name: "all serving", want: []netip.Addr{tVIP, vip2}},
		{name: "one of two backends down", unhealthy: []uint32{1}, want: []netip.Addr{tVIP, vip2}},
		{name: "every backend of vip2 down", unhealthy: []uint32{4}, want: []netip.Addr{tVIP}},
		{name: "one port of vip still serves", unhealthy: []uint32{1, 2}, want: []netip.Addr{tVIP, vip2}},
		{name: "every port of vip down", unhealthy: []uint32{1, 2}, drained: []uint32{3}, want: []netip.Addr{vip2}},
		{name: "drained", drained: []uint32{1, 2, 3, 4}, want: nil},
		{name: "no next hop", unresolved: []netip.Addr{tB1}, want: []netip.Addr{tVIP}},
		{name: "drained and unhealthy mixed", unhealthy: []uint32{2, 3}, drained: []uint32{1}, want: []netip.Addr{vip2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := st.Clone()
			for _, id := range c.drained {
				if err := s.DrainBackend(id); err != nil {
					t.Fatal(err)
				}
			}
			tb := buildTables(inputs{state: s,
				healthy: func(id uint32) bool { return !slices.Contains(c.unhealthy, id) },
				hop: func(a netip.Addr) Hop {
					if slices.Contains(c.unresolved, a) {
						return Hop{Problem: "no route"}
					}
					return Hop{MAC: packet.MAC{2, 0, 0, 0, 0, 1}}
				}})
			if !slices.Equal(tb.announce, c.want) {
				t.Errorf("announce %v, want %v", tb.announce, c.want)
			}
		})
	}
}

// fakeSpeaker records what a speaker was told.
type fakeSpeaker struct {
	cfg       *config.BGP
	announced []netip.Addr
	calls     int
	frozen    bool
	stopped   bool
}

func (s *fakeSpeaker) Announce(v []netip.Addr) error {
	if !s.frozen {
		s.announced = slices.Clone(v)
	}
	s.calls++
	return nil
}
func (s *fakeSpeaker) WithdrawAll() error               { s.frozen, s.announced = true, nil; return nil }
func (s *fakeSpeaker) Announced() []netip.Addr          { return s.announced }
func (s *fakeSpeaker) Peers() ([]bgp.PeerStatus, error) { return nil, nil }
func (s *fakeSpeaker) Stop()                            { s.stopped = true }

// The speaker follows the apply path: it starts once announcing is on,
// announces only serving VIPs, restarts on new settings, refuses a change
// it cannot start with, and a graceful stop freezes it withdrawn.
func TestBGPFollowsTheState(t *testing.T) {
	c := newTestCore(t, "", Limits)
	var started []*fakeSpeaker
	c.env.startBGP = func(b *config.BGP) (Announcer, error) {
		if b.ListenPort == 179 {
			return nil, errors.New("listen tcp :179: address already in use")
		}
		s := &fakeSpeaker{cfg: b}
		started = append(started, s)
		return s, nil
	}
	settings := api.BGPSettings{ASN: 65001, RouterID: "10.0.5.11", Peers: []string{"10.0.5.1:65000"}}
	if err := c.SetBGP(&settings); err != nil {
		t.Fatal(err)
	}
	if len(started) != 0 {
		t.Fatal("a speaker started before XDP was attached")
	}
	if err := c.startAnnouncing(); err != nil || len(started) != 1 {
		t.Fatalf("start: %v, %d speakers", err, len(started))
	}
	sp := started[0]
	if sp.cfg.HoldSeconds != config.DefaultHoldSeconds || len(sp.announced) != 0 {
		t.Fatalf("speaker %+v", sp)
	}
	addLab(t, c)
	if !slices.Equal(sp.announced, []netip.Addr{tVIP}) {
		t.Fatalf("announced %v after backends were added", sp.announced)
	}
	// Health: one backend down keeps it, both down withdraw, one back announces.
	calls := sp.calls
	c.probes.setHealthy(1, false)
	c.refresh()
	if !slices.Equal(sp.announced, []netip.Addr{tVIP}) || sp.calls != calls {
		t.Fatalf("one backend down: %v (%d calls, want %d: nothing new to say)", sp.announced, sp.calls, calls)
	}
	c.probes.setHealthy(2, false)
	c.refresh()
	if len(sp.announced) != 0 {
		t.Fatalf("every backend down, still announced %v", sp.announced)
	}
	if b, _ := c.BGP(); len(b.Announced) != 0 || b.Settings == nil || !b.Announcing {
		t.Fatalf("view %+v", b)
	}
	c.probes.setHealthy(2, true)
	c.refresh()
	if !slices.Equal(sp.announced, []netip.Addr{tVIP}) {
		t.Fatalf("recovered, announced %v", sp.announced)
	}
	// New settings: the old speaker stops first, the new one announces.
	settings.HoldSeconds = 3
	if err := c.SetBGP(&settings); err != nil {
		t.Fatal(err)
	}
	if len(started) != 2 || !sp.stopped || !slices.Equal(started[1].announced, []netip.Addr{tVIP}) {
		t.Fatalf("restart: %d speakers, old stopped %v, new announced %v", len(started), sp.stopped, started[1].announced)
	}
	// Settings the speaker cannot start with: refused, and a speaker with
	// the old ones runs again at once.
	settings.ListenPort = 179
	err := c.SetBGP(&settings)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("failed start answered %v", err)
	}
	if c.store.State().BGP.ListenPort != 0 {
		t.Fatal("the refused settings were saved")
	}
	cur := started[len(started)-1]
	if len(started) != 3 || c.speaker.Load().Announcer != cur || cur.stopped || !slices.Equal(cur.announced, []netip.Addr{tVIP}) {
		t.Fatalf("after the refused change the speaker is %+v", cur)
	}
	// Graceful stop: withdrawn, and no later apply announces again.
	had, err := c.withdraw()
	if !had || err != nil || len(cur.announced) != 0 {
		t.Fatalf("withdraw: %v %v %v", had, err, cur.announced)
	}
	c.probes.setHealthy(1, true)
	c.refresh()
	if len(cur.announced) != 0 {
		t.Fatal("announced again during the drain")
	}
	c.stopBGP()
	if !cur.stopped || c.speaker.Load() != nil {
		t.Fatal("speaker not stopped at exit")
	}
	// Off through the API.
	if err := c.SetBGP(nil); err != nil || c.store.State().BGP != nil {
		t.Fatal(err)
	}
}
