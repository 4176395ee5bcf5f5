package netlink_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/netlink"
	"github.com/scmlb-xsk/scmlb-xsk/internal/testenv"
)

func TestNextHopAndManagedNeighbour(t *testing.T) {
	testenv.RequireRoot(t)
	a, b, err := testenv.NewVethPair(t, testenv.Endpoint{If: "v0", CIDR: "10.8.0.1/24"}, testenv.Endpoint{If: "v1", CIDR: "10.8.0.2/24"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.IP("route", "add", "10.9.0.0/16", "via", "10.8.0.2"); err != nil {
		t.Fatal(err)
	}
	var peerMAC net.HardwareAddr
	b.Do(func() error {
		ifc, err := net.InterfaceByName("v1")
		if err == nil {
			peerMAC = ifc.HardwareAddr
		}
		return err
	})
	peer := netip.MustParseAddr("10.8.0.2")

	err = a.Do(func() error {
		v0, err := netlink.InterfaceByName("v0")
		if err != nil {
			t.Fatal(err)
		}
		if v0.Queues != 1 || v0.XDPProgID != 0 {
			t.Errorf("v0: %+v, want 1 RX queue and no XDP", v0)
		}
		if _, err := netlink.InterfaceByName("nope0"); err == nil || !strings.Contains(err.Error(), `"nope0"`) {
			t.Errorf("missing interface: %v", err)
		}
		for dst, want := range map[string]netip.Addr{"10.8.0.2": peer, "10.9.1.1": peer} {
			hop, ifindex, err := netlink.NextHop(netip.MustParseAddr(dst))
			if err != nil || hop != want || ifindex != v0.Index {
				t.Errorf("NextHop(%s) = %s, %d, %v; want %s via %d", dst, hop, ifindex, err, want, v0.Index)
			}
		}
		if _, _, err := netlink.NextHop(netip.MustParseAddr("192.0.2.1")); err == nil {
			t.Error("NextHop without a route succeeded")
		}

		n := netlink.NewNeighbours(zap.NewNop())
		if tb, _ := n.Table(v0.Index); tb[peer] != nil {
			t.Fatal("peer resolved before anyone asked")
		}
		if err := n.Request(v0.Index, peer); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			tb, err := n.Table(v0.Index)
			if err != nil {
				t.Fatal(err)
			}
			if tb[peer].String() == peerMAC.String() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("managed neighbour never resolved: %v", tb)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if tb, _ := n.Table(v0.Index); tb[peer] != nil {
			t.Error("Close left the managed neighbour entry")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
