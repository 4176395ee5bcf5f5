package dataplane

// backendIndex finds a backend by id: open addressing over a power-of-two
// array at most half full, probed linearly from a multiplicative hash.
// Every packet of a tracked flow looks its backend up by id, and a Go map
// (memhash of the key, group match) cost that ~15 ns; this is a multiply
// and, mostly, one slot. Built once per table, read-only afterwards.
type backendIndex struct {
	slots []*backend
	shift uint32
}

func newBackendIndex(bs []*backend) backendIndex {
	bits := uint32(1)
	for 1<<bits < 2*len(bs) {
		bits++
	}
	x := backendIndex{slots: make([]*backend, 1<<bits), shift: 32 - bits}
	mask := uint32(len(x.slots) - 1)
	for _, b := range bs {
		i := x.home(b.id)
		for x.slots[i] != nil {
			i = (i + 1) & mask
		}
		x.slots[i] = b
	}
	return x
}

func (x backendIndex) home(id uint32) uint32 { return (id * 0x9e3779b9) >> x.shift }

// get is the backend with id, or nil.
func (x backendIndex) get(id uint32) *backend {
	mask := uint32(len(x.slots) - 1)
	for i := x.home(id); ; i = (i + 1) & mask {
		b := x.slots[i]
		if b == nil || b.id == id {
			return b
		}
	}
}

// len is the number of backends.
func (x backendIndex) len() int {
	n := 0
	for _, b := range x.slots {
		if b != nil {
			n++
		}
	}
	return n
}
