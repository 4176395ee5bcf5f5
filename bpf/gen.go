package bpf

// The target is bpfel only: the loader runs on little-endian hosts (amd64, arm64).
//go:generate go tool bpf2go -tags linux -target bpfel -type endpoint -type counter xdp xdp.c -- -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu -O2 -Wall -Werror
