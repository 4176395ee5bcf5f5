package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Limits compiled into the program: `enum limits` in include/consts.h,
// handed over by bpf2go. The daemon refuses a state beyond them, so the
// maps never meet an entry they cannot hold.
const (
	MaxQueues              = int(xdpLimitsLIMIT_QUEUES)   // RX queues per interface (XSKMAP keys)
	MaxIfaces              = int(xdpLimitsLIMIT_IFACES)   // interfaces with sockets
	MaxServices            = int(xdpLimitsLIMIT_SERVICES) // VIP:port/proto entries
	MaxBackends            = int(xdpLimitsLIMIT_BACKENDS) // distinct backend ip:port/proto, all services
	MaxBackendsPerService  = int(xdpLimitsLIMIT_BACKENDS_PER_SERVICE)
	MaxLocalAddrs          = int(xdpLimitsLIMIT_LOCAL_ADDRS)
	MaxSNATAddrs           = int(xdpLimitsLIMIT_SNAT_ADDRS)
	MaxFirewallRules       = int(xdpLimitsLIMIT_FW_RULES)
	MaxRulesPerPrefix      = int(xdpLimitsLIMIT_RULES_PER_PREFIX)
	MaxDosPolicies         = int(xdpLimitsLIMIT_DOS_POLICIES)
	MaxDosTrackedSources   = int(xdpLimitsLIMIT_DOS_SOURCES)
	maxRuleSetSlotsFromGen = len(xdpRuleSet{}.Slots)
)

// mapLimits is the size each map must have for the limits to hold.
var mapLimits = map[string]int{
	"services": MaxServices, "backends": MaxBackends, "backend_hosts": MaxBackends,
	"local_addrs": MaxLocalAddrs, "if_slots": MaxIfaces, "xsks": MaxQueues * MaxIfaces,
	"vips": MaxServices, "snat_addrs": MaxSNATAddrs,
	"fw_prefixes": MaxFirewallRules, "fw_rules": MaxFirewallRules, "fw_drops": MaxFirewallRules,
	"dos_policies": MaxDosPolicies, "dos_drops": MaxDosPolicies, "dos_sources": MaxDosTrackedSources,
}

// CheckSpec verifies that the compiled maps are as large as the limits say:
// a header edit that changed a limit but not its map is caught at load.
func CheckSpec(spec *ebpf.CollectionSpec) error {
	for name, want := range mapLimits {
		m, ok := spec.Maps[name]
		if !ok {
			return fmt.Errorf("xdp object has no map %q", name)
		}
		if int(m.MaxEntries) != want {
			return fmt.Errorf("map %s holds %d entries, the limits say %d", name, m.MaxEntries, want)
		}
	}
	if maxRuleSetSlotsFromGen != MaxRulesPerPrefix {
		return fmt.Errorf("struct rule_set has %d slots, the limits say %d", maxRuleSetSlotsFromGen, MaxRulesPerPrefix)
	}
	return nil
}

// Spec parses the embedded object (no kernel needed), for CheckSpec and tests.
func Spec() (*ebpf.CollectionSpec, error) {
	spec, err := loadXdp()
	if err != nil {
		return nil, fmt.Errorf("parse xdp object: %w", err)
	}
	return spec, nil
}
