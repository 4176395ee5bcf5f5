package bpf

import (
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// Verdict is what the XDP program did with a packet: `enum verdict` in
// include/consts.h, the index of verdict_stats and the dump's verdict.
type Verdict uint32

// The verdicts, from the bpf2go-generated enum.
const (
	VerdictPass         = Verdict(xdpVerdictVERDICT_PASS)
	VerdictSteerService = Verdict(xdpVerdictVERDICT_STEER_SERVICE)
	VerdictSteerReply   = Verdict(xdpVerdictVERDICT_STEER_REPLY)
	VerdictNoSocket     = Verdict(xdpVerdictVERDICT_NO_SOCKET)
	VerdictMalformed    = Verdict(xdpVerdictVERDICT_MALFORMED)
	VerdictFragment     = Verdict(xdpVerdictVERDICT_FRAGMENT)
	VerdictFirewallDrop = Verdict(xdpVerdictVERDICT_FW_DROP)
	VerdictDosDrop      = Verdict(xdpVerdictVERDICT_DOS_DROP)
	VerdictHeld         = Verdict(xdpVerdictVERDICT_HELD)
	NumVerdicts         = int(xdpVerdictVERDICT_MAX)
)

// NumProtoIndexes is the size of proto_stats (`enum proto_idx`).
const NumProtoIndexes = int(xdpProtoIdxPROTO_MAX)

// String is the enumerator's name without its prefix, in lower case
// (VERDICT_FW_DROP is "fw_drop"): the names come from the C header's BTF,
// so there is no second list to keep in order.
func (v Verdict) String() string { return enumName(enumNames().verdicts, int(v)) }

// VerdictNames lists the verdict names in index order.
func VerdictNames() []string { return enumNames().verdicts }

// ProtoNames lists the proto_stats names in index order (non_ip, ...).
func ProtoNames() []string { return enumNames().protos }

func enumName(names []string, i int) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("unknown-%d", i)
}

type names struct{ verdicts, protos []string }

// enumNames reads the enums from the embedded object's BTF once. The object
// is compiled into the binary, so a failure here is a build defect.
var enumNames = sync.OnceValue(func() names {
	spec, err := Spec()
	if err != nil {
		panic(err)
	}
	return names{verdicts: mustEnum(spec.Types, "verdict", "VERDICT_", NumVerdicts),
		protos: mustEnum(spec.Types, "proto_idx", "PROTO_", NumProtoIndexes)}
})

func mustEnum(types *btf.Spec, name, prefix string, n int) []string {
	var e *btf.Enum
	if err := types.TypeByName(name, &e); err != nil {
		panic(fmt.Sprintf("enum %s not in the xdp object's BTF: %v", name, err))
	}
	out := make([]string, n)
	for _, v := range e.Values {
		if int(v.Value) < n {
			out[v.Value] = strings.ToLower(strings.TrimPrefix(v.Name, prefix))
		}
	}
	for i, s := range out {
		if s == "" {
			panic(fmt.Sprintf("enum %s has no name for %d", name, i))
		}
	}
	return out
}
