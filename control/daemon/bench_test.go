package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane"
	"github.com/scmlb-xsk/scmlb-xsk/dataplane/conntrack"
	"github.com/scmlb-xsk/scmlb-xsk/fwdmode"
	"github.com/scmlb-xsk/scmlb-xsk/ipproto"
)

// BenchmarkChangeAt4096Services is issue 9's scale check: a full table of
// services (MAX_SERVICES, two backends each) behind a real state file
// (written and fsynced on every change) and a real dataplane engine, then
// one `service add` and one `backend drain`, and a `service get` while that
// many services exist. With root the XDP maps are the real program's;
// without it a fake stands in. RSS is the process's after setup.
func BenchmarkChangeAt4096Services(b *testing.B) {
	kernels := map[string]func(b *testing.B) Kernel{"fake": func(*testing.B) Kernel { return newFakeKernel() }}
	if os.Geteuid() == 0 {
		kernels["bpf"] = func(b *testing.B) Kernel {
			p, err := bpf.Load()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Close() })
			return p
		}
	}
	for name, kern := range kernels {
		b.Run("kernel="+name, func(b *testing.B) {
			c := newTestCore(b, filepath.Join(b.TempDir(), "state.json"), Limits)
			c.core.kern = kern(b)
			// The daemon's default table, so the RSS is the daemon's.
			c.core.eng = dataplane.NewEngine(conntrack.New(1<<20, conntrack.DefaultTimeouts), zap.NewNop())
			fill(b, c, bpf.MaxServices-1)
			b.ReportMetric(rssMB(), "MB-RSS")
			vip := netip.MustParseAddr("10.99.0.1")
			b.Run("service add", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					s, err := c.AddService(api.AddServiceRequest{VIP: vip.String() + ":80", Proto: "tcp"})
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := c.DeleteService(s.ID, true); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.ReportMetric(rssMB(), "MB-RSS")
			})
			b.Run("backend drain", func(b *testing.B) {
				st := c.store.State()
				id := st.Services[len(st.Services)/2].Backends[0].ID
				for i := 0; i < b.N; i++ {
					if err := c.DrainBackend(id); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					undrain(b, c, id)
					b.StartTimer()
				}
				b.ReportMetric(rssMB(), "MB-RSS")
			})
			b.Run("service get", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if n := len(c.Services()); n != bpf.MaxServices-1 {
						b.Fatalf("%d services", n)
					}
				}
			})
		})
	}
}

// fill adds n services of two backends each in one change, then installs.
func fill(b *testing.B, c *testCore, n int) {
	_, err := c.change(func(st *config.State) error {
		for i := 0; i < n; i++ {
			s, err := st.AddService(netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)}), 80, ipproto.TCP, fwdmode.NAT, nil)
			if err != nil {
				return err
			}
			for j := 0; j < 2; j++ {
				a := netip.AddrFrom4([4]byte{10, byte(2 + j), byte(i >> 8), byte(i)})
				if _, err := st.AddBackend(s.ID, a, 8080, 1); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
}

func undrain(b *testing.B, c *testCore, id uint32) {
	_, err := c.change(func(st *config.State) error {
		svc, i, err := st.Backend(id)
		if err == nil {
			svc.Backends[i].Drained = false
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// rssMB is the process's resident set size in MB (/proc/self/status).
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
