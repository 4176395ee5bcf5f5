package maglev

import "testing"

func BenchmarkBuild10(b *testing.B) {
	bs := backends(10)
	for b.Loop() {
		Build(bs, SizeFor(len(bs)))
	}
}

func BenchmarkLookup(b *testing.B) {
	t := Build(backends(10), SizeFor(10))
	var h uint64
	for b.Loop() {
		h += 0x9e3779b97f4a7c15
		_ = t.Lookup(h)
	}
}
