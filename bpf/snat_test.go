package bpf_test

import (
	"net/netip"
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/internal/fixture"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// Replies to a full-NAT address that is the host's own are steered only
// within the SNAT port range; the host's other traffic on that address (a
// health probe, SSH) goes to the kernel. ICMP errors about full-NAT packets
// follow the quoted ports.
func TestSNATAddressSteering(t *testing.T) {
	prog := loadWithSocket(t)
	_, backends := fixtureServices()
	prog.SetBackends(backends)
	snat, snat6 := netip.MustParseAddr("10.0.2.100"), netip.MustParseAddr("2001:db8:2::100")
	if err := prog.SetLocalAddrs([]netip.Addr{snat, snat6}); err != nil {
		t.Fatal(err)
	}
	if err := prog.SetSNAT([]netip.Addr{snat, snat6}, 40000, 49999); err != nil {
		t.Fatal(err)
	}
	for _, fam := range []struct {
		snat, backend netip.Addr
		icmp          ipproto.Proto
		unreach       uint8
	}{{snat, fixture.Backend1, fixture.ProtoICMP, 3}, {snat6, fixture.Backend61, fixture.ProtoICMPv6, 1}} {
		reply := func(dport uint16) []byte {
			return fixture.Frame{SrcMAC: fixture.BackendMAC1, DstMAC: fixture.LBDownMAC, Src: fam.backend, Dst: fam.snat,
				Proto: fixture.ProtoTCP, SrcPort: 80, DstPort: dport, TCPFlags: fixture.FlagACK}.Bytes()
		}
		unreach := func(sport uint16) []byte {
			quoted := fixture.Frame{Src: fam.snat, Dst: fam.backend, Proto: fixture.ProtoTCP, SrcPort: sport, DstPort: 80}
			return fixture.Frame{SrcMAC: fixture.BackendMAC1, DstMAC: fixture.LBDownMAC, Src: fam.backend, Dst: fam.snat,
				Proto: fam.icmp, ICMP: &fixture.ICMPHeader{Type: fam.unreach, Code: 1}, Payload: fixture.Quote(quoted, 8)}.Bytes()
		}
		for _, c := range []struct {
			name  string
			frame []byte
			want  uint32
		}{
			{"reply in the range", reply(40000), xdpRedirect},
			{"reply at the top of the range", reply(49999), xdpRedirect},
			{"the host's own connection", reply(39999), xdpPass},
			{"error about a full-NAT packet", unreach(45000), xdpRedirect},
			{"error about the host's own packet", unreach(30000), xdpPass},
		} {
			if got := run(t, prog, c.frame); got != c.want {
				t.Errorf("%s %s: action %d, want %d", fam.snat, c.name, got, c.want)
			}
		}
	}
	if err := prog.SetSNAT(make([]netip.Addr, bpf.MaxSNATAddrs+1), 1, 2); err == nil {
		t.Error("more SNAT addresses than the map holds accepted")
	}
}
