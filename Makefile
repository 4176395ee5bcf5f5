GO      ?= go
BIN     := bin/scmlb-xsk
# Fuzzing of the decoder and rewrite (the seed corpus runs in `make test`).
FUZZTIME ?= 30s

.PHONY: all build generate check-generate test demo bench fuzz clean deps

all: build

build:
	$(GO) build -o $(BIN) ./cmd/scmlb-xsk

# Rebuild the bpf2go output (needs clang, llvm, libbpf-dev).
generate:
	$(GO) generate ./bpf/

# Fails if the committed bpf2go output differs from a fresh build.
check-generate: generate
	git diff --exit-code -- bpf/

# Tools the tests run that a fresh machine lacks (installed when root).
# tcpdump reads the dump test's pcap; bird2 and frr are the scale-out tests' BGP routers.
deps:
	@missing=""; command -v tcpdump >/dev/null 2>&1 || missing="$$missing tcpdump"; \
	command -v bird >/dev/null 2>&1 || missing="$$missing bird2"; \
	command -v vtysh >/dev/null 2>&1 || missing="$$missing frr"; \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } || \
		echo "note: missing$$missing; the tests that need them will skip (apt-get install$$missing)"

# Privileged tests (netns, XDP, AF_XDP) need root; they skip otherwise, and fail under CI=true.
test: deps build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 8m ./...

# Builds, makes a netns lab, runs the load balancer, sends traffic, prints the spread, tears down.
demo: build
	$(GO) run ./internal/demo -bin $(BIN)

# Go benchmarks of the per-packet path (established flows at 1k, 32k and 1M flows, 1 and 2 workers,
# new flows, conntrack, what a random cache line costs here, Maglev), the control plane at 4096
# services, then (as root) the netns comparison
# with an AF_XDP l2fwd baseline, nftables DNAT and kernel routing, 3 runs of each (docs/benchmarks.md).
BENCHTIME ?= 3s
BENCHRUNS ?= 3
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./dataplane/...
	$(GO) test -run '^$$' -bench BenchmarkChangeAt4096Services -benchtime 30x ./control/daemon/
	@if [ "$$(id -u)" = 0 ]; then \
		command -v nft >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null; }; \
		$(GO) run ./internal/bench -bin $(BIN) -duration $(BENCHTIME) -runs $(BENCHRUNS); \
	else echo "netns benchmark skipped: needs root"; fi

clean:
	rm -rf bin

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeRewrite -fuzztime $(FUZZTIME) ./dataplane/packet/
