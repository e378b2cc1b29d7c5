#!/usr/bin/env bash
# The health checks at scale through the appliance (docs/benchmarks.md, "Health checks at
# scale"): rvs in the lab with N half-open TCP_CHECKs every second sent from the data plane,
# against N listening ports in rvs-rs1. Prints every rvs thread's CPU share, the SYN rate and
# the detection latency percentiles as JSON (scripts/bench_checks_plane.py).
#
# Usage: scripts/bench-checks-plane.sh [--servers N] [--fail N] [--window SECONDS]
# Needs root and uses the lab (brought up if it is down); leaves it running plain rvs.
set -euo pipefail
cd "$(dirname "$0")/.."
servers=10000 fail=1000 window=20
while [ $# -gt 0 ]; do
    case "$1" in
        --servers) servers=${2:?}; shift 2 ;;
        --fail) fail=${2:?}; shift 2 ;;
        --window) window=${2:?}; shift 2 ;;
        *) echo "bench-checks-plane.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-checks-plane.sh: must run as root" >&2; exit 1; }
[ "$fail" -le "$servers" ] || { echo "bench-checks-plane.sh: --fail exceeds --servers" >&2; exit 2; }
cargo build --release -q --workspace --bins
scripts/lab.sh status >/dev/null 2>&1 || scripts/lab.sh up >/dev/null
trap 'scripts/lab.sh stop-rvs >/dev/null 2>&1; scripts/lab.sh start-rvs >/dev/null 2>&1 || true' EXIT
/usr/bin/python3 scripts/bench_checks_plane.py "$servers" "$fail" "$window"
