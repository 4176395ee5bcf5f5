package bpf

import (
	"strings"
	"testing"
)

// The map sizes in the object are the limits the daemon enforces; no root
// needed: the object is parsed, not loaded.
func TestSpecMatchesLimits(t *testing.T) {
	spec, err := Spec()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSpec(spec); err != nil {
		t.Fatal(err)
	}
	spec.Maps["services"].MaxEntries++
	if err := CheckSpec(spec); err == nil || !strings.Contains(err.Error(), "services") {
		t.Fatalf("a map larger than its limit passed: %v", err)
	}
}

func TestNamesFromBTF(t *testing.T) {
	want := []string{"pass", "steer_service", "steer_reply", "no_socket", "malformed", "fragment", "fw_drop", "dos_drop", "held"}
	if got := VerdictNames(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("verdict names %v", got)
	}
	if VerdictDosDrop.String() != "dos_drop" || Verdict(99).String() != "unknown-99" {
		t.Fatal("Verdict.String")
	}
	if got := ProtoNames(); strings.Join(got, ",") != "non_ip,ipv4_other,icmp,tcp,udp,ipv6_other,icmpv6,tcp6,udp6" {
		t.Fatalf("proto names %v", got)
	}
}
