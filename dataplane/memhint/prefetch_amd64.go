package memhint

// Prefetch asks the CPU to bring the cache line at addr in. It is no load in
// Go's memory model: it reads nothing and cannot race.
//
//go:noescape
func Prefetch(addr uintptr)
