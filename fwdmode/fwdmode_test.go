package fwdmode

import (
	"encoding/json"
	"testing"
)

func TestParseAndJSON(t *testing.T) {
	for in, want := range map[string]Mode{"": NAT, "NAT": NAT, "fullnat": FullNAT, "DSR-L2": DSRL2, "dsr-ipip": DSRIPIP} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v %v", in, got, err)
		}
	}
	if _, err := Parse("dsr"); err == nil {
		t.Error("dsr accepted")
	}
	var v struct{ M Mode }
	if err := json.Unmarshal([]byte(`{"M":"DSR-IPIP"}`), &v); err != nil || v.M != DSRIPIP || !v.M.DSR() {
		t.Fatal(v, err)
	}
	if b, _ := json.Marshal(v); string(b) != `{"M":"dsr-ipip"}` {
		t.Fatalf("%s", b)
	}
	if FullNAT.DSR() || NAT.DSR() || Mode(0) != NAT {
		t.Fatal("DSR()")
	}
}
