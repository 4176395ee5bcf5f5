package daemon

import (
	"strings"
	"testing"
)

// Bug 3 of issue 9: a receiving queue without a socket is refused at
// start, saying which queues and how to fix it.
func TestPlanQueues(t *testing.T) {
	for _, c := range []struct {
		name     string
		up, down nic
		oneArm   bool
		want, n  int
		errHas   []string
	}{
		{"equal", nic{"up0", 2, 0}, nic{"down0", 2, 0}, false, 0, 2, nil},
		{"upstream has more", nic{"up0", 4, 0}, nic{"down0", 1, 0}, false, 0, 0, []string{"up0", "queues 1-3", "ethtool -L up0 combined 1", "ethtool -X up0 equal 1"}},
		{"backend has more", nic{"up0", 1, 0}, nic{"down0", 2, 0}, false, 0, 0, []string{"down0", "queue 1 would", "ethtool -L down0"}},
		{"rss keeps to the served queues", nic{"up0", 4, 1}, nic{"down0", 1, 0}, false, 0, 1, nil},
		{"--queues below the count", nic{"up0", 2, 0}, nic{"down0", 2, 0}, false, 1, 0, []string{"--queues 1", "queue 1"}},
		{"--queues above the count", nic{"up0", 2, 0}, nic{"down0", 2, 0}, false, 3, 0, []string{"--queues 3: want 1 to 2"}},
		{"--queues negative", nic{"up0", 2, 0}, nic{"down0", 2, 0}, false, -1, 0, []string{"--queues -1"}},
		{"one-arm", nic{"eth0", 3, 0}, nic{"eth0", 3, 0}, true, 0, 3, nil},
		{"more queues than the XSKMAP layout", nic{"eth0", 80, 0}, nic{"eth0", 80, 0}, true, 0, 0, []string{"queues 64-79"}},
	} {
		n, err := planQueues(c.up, c.down, c.oneArm, c.want)
		if c.errHas == nil {
			if err != nil || n != c.n {
				t.Errorf("%s: %d %v, want %d", c.name, n, err, c.n)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted with %d queues", c.name, n)
			continue
		}
		for _, s := range c.errHas {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q lacks %q", c.name, err, s)
			}
		}
	}
}
