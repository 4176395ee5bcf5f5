//go:build !amd64

package conntrack

func prefetch(addr uintptr) {}
