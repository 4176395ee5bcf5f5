package dataplane

import "testing"

func TestBackendIndex(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 100, 1000} {
		var bs []*backend
		for i := range n {
			// Ids as a long-running control plane leaves them: sparse.
			bs = append(bs, &backend{id: uint32(i)*7919 + 1})
		}
		x := newBackendIndex(bs)
		if x.len() != n {
			t.Fatalf("%d backends: len %d", n, x.len())
		}
		for _, b := range bs {
			if x.get(b.id) != b {
				t.Fatalf("%d backends: id %d not found", n, b.id)
			}
		}
		for _, id := range []uint32{0, 2, 1<<32 - 1, uint32(n)*7919 + 1} {
			if b := x.get(id); b != nil {
				t.Fatalf("%d backends: id %d found as %d", n, id, b.id)
			}
		}
	}
}
