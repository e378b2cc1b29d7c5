#!/usr/bin/env bash
# The health checks at scale (docs/benchmarks.md, "Health checks"): the checker engine with
# N real servers checked by TCP_CHECK every second, in a namespace of its own where
# 10.77.0.0/16 is local (so N servers need no N interfaces), and listeners in the benchmark
# process. Prints the checker thread's CPU share and the detection latency percentiles as JSON.
#
# Usage: scripts/bench-checks.sh [--servers N] [--fail N] [--window SECONDS] [--cpu CPU] [--half-open]
# Needs root. Does not use the lab (its own namespace, rvs-chkbench).
set -euo pipefail
cd "$(dirname "$0")/.."
NS=rvs-chkbench
servers=10000 fail=1000 window=20 cpu="" mode=()
while [ $# -gt 0 ]; do
    case "$1" in
        --servers) servers=${2:?}; shift 2 ;;
        --fail) fail=${2:?}; shift 2 ;;
        --window) window=${2:?}; shift 2 ;;
        --cpu) cpu=${2:?}; shift 2 ;;
        --half-open) mode=(--half-open); shift ;;
        *) echo "bench-checks.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-checks.sh: must run as root" >&2; exit 1; }
cargo build --release -q -p rvs-checks --example checks_bench
bin=${CARGO_TARGET_DIR:-target}/release/examples/checks_bench
ip netns del $NS 2>/dev/null || true
ip netns add $NS
trap 'ip netns del $NS 2>/dev/null || true' EXIT
ip -n $NS link set lo up
ip -n $NS route add local 10.77.0.0/16 dev lo
pin=()
[ -n "$cpu" ] && pin=(taskset -c "$cpu")
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
ip netns exec $NS "${pin[@]}" "$bin" --servers "$servers" --fail "$fail" --window "$window" "${mode[@]}"
