//go:build !amd64

package memhint

// Prefetch does nothing where no prefetch instruction is wired up.
func Prefetch(addr uintptr) {}
