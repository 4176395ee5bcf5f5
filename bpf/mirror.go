package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// mirror remembers what this process last wrote to a hash map (the program
// creates its maps, so they start empty and nobody else writes them), so a
// sync writes only the difference: one changed service is one map update,
// not 4096.
type mirror[K, V comparable] struct {
	m    *ebpf.Map
	have map[K]V
}

func newMirror[K, V comparable](m *ebpf.Map) *mirror[K, V] {
	return &mirror[K, V]{m: m, have: map[K]V{}}
}

// sync writes new and changed entries first, then deletes the ones no
// longer wanted, so an entry that stays is never missing in between. On
// error the mirror still matches the map: it records each write as it lands.
func (mr *mirror[K, V]) sync(want map[K]V) error {
	for k, v := range want {
		if old, ok := mr.have[k]; ok && old == v {
			continue
		}
		if err := mr.m.Put(k, v); err != nil {
			return fmt.Errorf("put %v in %s: %w", k, mr.m, err)
		}
		mr.have[k] = v
	}
	for k := range mr.have {
		if _, ok := want[k]; ok {
			continue
		}
		if err := mr.m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete %v from %s: %w", k, mr.m, err)
		}
		delete(mr.have, k)
	}
	return nil
}

// deleteWhere removes the keys of m for which drop is true, for maps the
// program writes too (DoS sources). Keys are collected first: deleting
// while iterating a hash map can restart the walk.
func deleteWhere[K comparable, V any](m *ebpf.Map, drop func(K) bool) error {
	var k K
	var v V
	var doomed []K
	it := m.Iterate()
	for it.Next(&k, &v) {
		if drop(k) {
			doomed = append(doomed, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate %s: %w", m, err)
	}
	for _, k := range doomed {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete from %s: %w", m, err)
		}
	}
	return nil
}
