package daemon

import (
	"testing"

	"github.com/scmlb-xsk/scmlb-xsk/bpf"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
)

// The store refuses states the XDP program cannot hold; both must agree.
func TestLimitsAgree(t *testing.T) {
	if config.MaxFirewallRules != bpf.MaxFirewallRules || config.MaxRulesPerPrefix != bpf.MaxRulesPerPrefix ||
		config.MaxDosPolicies != bpf.MaxDosPolicies {
		t.Fatal("config and bpf limits differ")
	}
}

func TestSlotsAreStable(t *testing.T) {
	s := newSlots(3)
	fresh, _ := s.assign([]uint32{10, 11, 12})
	if len(fresh) != 3 || s.byID[11] != 1 {
		t.Fatalf("%v %v", fresh, s.byID)
	}
	fresh, _ = s.assign([]uint32{10, 12, 13}) // 11 deleted, 13 takes its slot
	if len(fresh) != 1 || fresh[0] != 1 || s.byID[13] != 1 || s.byID[12] != 2 || s.byID[10] != 0 {
		t.Fatalf("%v %v", fresh, s.byID)
	}
	if _, err := s.assign([]uint32{10, 12, 13, 14}); err == nil {
		t.Fatal("more ids than slots accepted")
	}
}
