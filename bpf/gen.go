package bpf

// The target is bpfel only: the loader runs on little-endian hosts (amd64, arm64).
//go:generate go tool bpf2go -tags linux -target bpfel -type addr -type endpoint -type counter -type lpm_v4_key -type lpm_v6_key -type dos_key6 -type rule_set -type fw_rule -type dos_policy -type dos_key -type dos_state -type dump_cfg xdp xdp.c -- -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu -O2 -mcpu=v3 -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel decap decap.c -- -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu -O2 -mcpu=v3 -Wall -Werror
