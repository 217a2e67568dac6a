# drover: two commands for a new user, `make run` and `make test`.
GO      ?= go
BIN     := bin/drover
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/droverhq/drover/cmd/drover/cli.Version=$(VERSION)

# Fault-injection scale: `make test-long` runs hundreds of linearizability histories.
LIN_HISTORIES ?= 300

.PHONY: build run test test-long bench bench-store bench-api bench-sched bench-pods lint fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/drover

# A development cluster on this machine: one master (store, Kubernetes API,
# scheduler) with a node agent running real containers, data in
# ./drover-data. As root it first installs what the node needs (Debian:
# busybox-static for the demo image, CNI plugins, iptables).
run: build
	@if [ "$$(id -u)" = 0 ]; then \
	  need=""; \
	  dpkg -s busybox-static >/dev/null 2>&1 || need="$$need busybox-static"; \
	  [ -x /usr/lib/cni/bridge ] || need="$$need containernetworking-plugins"; \
	  command -v iptables-save >/dev/null || need="$$need iptables"; \
	  if [ -n "$$need" ]; then echo "make run: installing$$need"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; fi; \
	else echo "make run: not root: the server runs without a node agent (pods stay Pending); run as root for containers"; fi
	./$(BIN) server --dev

# Everything, with the race detector: unit tests, in-process 3- and
# 5-member clusters (in-memory and TCP), linearizability and watch checks
# under faults, crash durability, bad input.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

test-long:
	$(GO) test -race -count=1 -timeout 120m ./raftstore/ -run 'Linearizab|WatchUnderFaults' -lin.histories=$(LIN_HISTORIES) -v

# Benchmarks; see docs/benchmarks.md for the recorded figures and commands.
bench:
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkMemory100k$$' -benchtime 5s -timeout 60m ./raftstore/...
	$(GO) test -run '^$$' -bench '^BenchmarkMemory100k$$' -timeout 10m ./raftstore/

# The store beside etcd 3.4 (Debian etcd-server): 3 members each on
# loopback, started by the generator; see docs/benchmarks.md.
# BENCH_STORE_FLAGS=-quick for a ~2 min smoke run; -fsync-check for the
# strace fsync parity check; -reps 5 when the spread exceeds 15%.
BENCH_STORE_FLAGS ?=
bench-store: build
	$(GO) build -o bin/storebench ./bench/storebench
	./bin/storebench -drover ./$(BIN) $(BENCH_STORE_FLAGS)

# The Kubernetes API of a 3-master cluster (create, get, update, lists of
# 1k and 10k pods, watch fan-out to 1,000 watchers) against the Kubernetes
# API latency SLO; about 3 min; see docs/benchmarks.md.
# BENCH_API_FLAGS=-quick for a ~1 min smoke run; -json FILE; -profile for
# per-row CPU profiles of every master.
BENCH_API_FLAGS ?=
bench-api: build
	$(GO) build -o bin/apibench ./bench/apibench
	./bin/apibench -drover ./$(BIN) $(BENCH_API_FLAGS)

# The scheduler: 10,000 pods onto 1,000 hollow nodes (Node objects, no
# agents) through a real API server over HTTPS, pods bound per second, 5
# repetitions of each mode on fresh servers; about 2 min; see
# docs/benchmarks.md. BENCH_SCHED_FLAGS="-sched.nodes=5000 -sched.reps=1"
# and the like size it (-sched.pods, -sched.modes=backlog,stream,
# -sched.bind-workers, -sched.creators).
BENCH_SCHED_FLAGS ?=
bench-sched:
	$(GO) test -run '^TestSchedulingThroughput$$' -count=1 -v -timeout 60m ./control/scheduler/ -sched.bench $(BENCH_SCHED_FLAGS)

# Pod startup on a real node (as root): 3 masters on 127.0.0.51-53 and one
# `drover agent` (libcontainer, CNI on bridge drbench0, pods in
# 10.254.0.0/16) beside Debian's runc on the same busybox rootfs; single
# pods and bursts of 50 against the Kubernetes pod startup SLO, where the
# time goes, the agent's and shims' memory with 50 pods; about 3 min; see
# docs/benchmarks.md. BENCH_PODS_FLAGS=-quick for a ~1 min smoke run;
# -json FILE; -masters 1; -reps N.
BENCH_PODS_FLAGS ?=
bench-pods: build
	@if [ "$$(id -u)" != 0 ]; then echo "make bench-pods: needs root (it runs a real node agent and runc): sudo make bench-pods"; exit 1; fi
	@need=""; \
	  [ -x /usr/sbin/runc ] || [ -x /usr/bin/runc ] || need="$$need runc"; \
	  dpkg -s busybox-static >/dev/null 2>&1 || need="$$need busybox-static"; \
	  [ -x /usr/lib/cni/bridge ] || need="$$need containernetworking-plugins"; \
	  command -v iptables-save >/dev/null || need="$$need iptables"; \
	  if [ -n "$$need" ]; then echo "make bench-pods: installing$$need"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; fi
	$(GO) build -o bin/podbench ./bench/podbench
	./bin/podbench -drover ./$(BIN) $(BENCH_PODS_FLAGS)

fuzz:
	$(GO) test -run '^$$' -fuzz "^FuzzDecode$$" -fuzztime 60s ./raftstore/command

lint:
	@fmt=$$(gofmt -l .); if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin drover-data
