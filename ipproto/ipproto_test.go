package ipproto

import (
	"encoding/json"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Proto{"tcp": TCP, "TCP": TCP, "Udp": UDP, "icmp": ICMP, "ANY": Any} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "sctp", "tcp ", "6"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
	if _, err := ParseL4("icmp"); err == nil {
		t.Error("ParseL4 accepted icmp")
	}
	if p, err := ParseL4("UDP"); err != nil || p != UDP {
		t.Errorf("ParseL4(UDP) = %v %v", p, err)
	}
}

func TestJSONIsCanonical(t *testing.T) {
	var v struct{ P Proto }
	if err := json.Unmarshal([]byte(`{"P":"TCP"}`), &v); err != nil || v.P != TCP {
		t.Fatalf("%v %v", v, err)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"P":"tcp"}` {
		t.Fatalf("%s", b)
	}
	if err := json.Unmarshal([]byte(`{"P":"gre"}`), &v); err == nil {
		t.Fatal("unknown protocol accepted")
	}
	if _, err := json.Marshal(struct{ P Proto }{47}); err == nil {
		t.Fatal("unnamed protocol marshalled")
	}
}
