package daemon

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/packet"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

// Bug 4 of issue 9, at the resolver: a backend's next hop is requested,
// resolved, and requested again after its entry is deleted; a route that
// leaves by another interface is a problem, named.
func TestResolverRequestsAgain(t *testing.T) {
	testenv.RequireRoot(t)
	lb, peer, err := testenv.NewVethPair(t, testenv.Endpoint{If: "down0", CIDR: "10.8.0.1/24"}, testenv.Endpoint{If: "b0", CIDR: "10.8.0.2/24"})
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.Veth(lb, "up0", peer, "c0"); err != nil {
		t.Fatal(err)
	}
	lb.IP("addr", "add", "10.7.0.1/24", "dev", "up0")
	lb.IP("link", "set", "up0", "up")
	peer.IP("link", "set", "c0", "up")
	backend, elsewhere := netip.MustParseAddr("10.8.0.2"), netip.MustParseAddr("10.7.0.9")
	inResolver(t, lb, func(r *resolver) error {
		addrs := []netip.Addr{backend, elsewhere}
		first := waitResolved(t, r, addrs, backend)
		if p := r.Backend(elsewhere).Problem; !strings.Contains(p, "not the backend interface down0") {
			t.Errorf("route by the upstream interface: %q", p)
		}
		if _, err := lb.IP("neigh", "del", backend.String(), "dev", "down0"); err != nil {
			return err
		}
		// The next refresh sees it gone; the request is rate-limited to one a second.
		time.Sleep(requestPeriod)
		if changed, unresolved := r.Refresh(addrs, time.Now()); !changed || unresolved != 2 {
			t.Errorf("refresh after the delete: changed %v, unresolved %d", changed, unresolved)
		}
		if again := waitResolved(t, r, addrs, backend); again.MAC != first.MAC {
			t.Errorf("resolved to %v, then %v", first.MAC, again.MAC)
		}
		ch := r.Client()
		v4 := 0
		for _, p := range ch.OnLink {
			if p.Addr().Is4() {
				v4++
				if p != netip.MustParsePrefix("10.7.0.1/24") {
					t.Errorf("upstream on-link prefix %v", p)
				}
			} else if !p.Addr().IsLinkLocalUnicast() {
				t.Errorf("upstream on-link prefix %v", p)
			}
		}
		if v4 != 1 {
			t.Errorf("upstream on-link prefixes %v", ch.OnLink)
		}
		return nil
	})
}

// inResolver runs body in lb's namespace with a resolver over its up0 and
// down0.
func inResolver(t *testing.T, lb *testenv.NS, body func(r *resolver) error) {
	t.Helper()
	err := lb.Do(func() error {
		down, err := netlink.InterfaceByName("down0")
		if err != nil {
			return err
		}
		up, _ := netlink.InterfaceByName("up0")
		n := netlink.NewNeighbours(zap.NewNop())
		defer n.Close()
		return body(newResolver(zap.NewNop(), n, up, down))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitResolved refreshes addrs until backend has a next-hop MAC (5 s at
// most) and returns its hop.
func waitResolved(t *testing.T, r *resolver, addrs []netip.Addr, backend netip.Addr) Hop {
	t.Helper()
	var h Hop
	deadline := time.Now().Add(5 * time.Second)
	for now := time.Now(); now.Before(deadline); now = time.Now() {
		r.Refresh(addrs, now)
		if h = r.Backend(backend); h.MAC != (packet.MAC{}) {
			return h
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("backend never resolved: %+v", h)
	return h
}

// An IPv6 backend's next hop is resolved over NDP through a managed entry,
// and an IPv6 client's gateway is the IPv6 default route's.
func TestResolverIPv6(t *testing.T) {
	testenv.RequireRoot(t)
	lb, peer, err := testenv.NewVethPair(t, testenv.Endpoint{If: "down0"}, testenv.Endpoint{If: "b0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.Veth(lb, "up0", peer, "c0"); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{{"addr", "add", "2001:db8:8::1/64", "dev", "down0", "nodad"},
		{"addr", "add", "2001:db8:7::1/64", "dev", "up0", "nodad"}, {"link", "set", "up0", "up"},
		{"-6", "route", "add", "default", "via", "2001:db8:7::fe", "dev", "up0"}} {
		if _, err := lb.IP(c...); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range [][]string{{"addr", "add", "2001:db8:8::2/64", "dev", "b0", "nodad"},
		{"addr", "add", "2001:db8:7::fe/64", "dev", "c0", "nodad"}, {"link", "set", "c0", "up"}} {
		if _, err := peer.IP(c...); err != nil {
			t.Fatal(err)
		}
	}
	backend := netip.MustParseAddr("2001:db8:8::2")
	inResolver(t, lb, func(r *resolver) error {
		deadline := time.Now().Add(5 * time.Second)
		if h := waitResolved(t, r, []netip.Addr{backend}, backend); h.Problem != "" {
			t.Fatalf("IPv6 backend not resolved: %+v", h)
		}
		r.RequestClient(netip.MustParseAddr("2001:db8:99::5")) // off-link: the gateway is probed
		for now := time.Now(); now.Before(deadline) && r.Client().Gateway6 == (packet.MAC{}); now = time.Now() {
			r.Refresh(nil, now)
			time.Sleep(50 * time.Millisecond)
		}
		if ch := r.Client(); ch.Gateway6 == (packet.MAC{}) || ch.Gateway != (packet.MAC{}) {
			t.Fatalf("client hops %+v", ch)
		}
		return nil
	})
}
