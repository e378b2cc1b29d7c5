#!/usr/bin/env bash
# Runs every test of rvs on a Debian host, as root:
#   1. installs what the build and the lab need (scripts/setup-host.sh: packages, hugepages),
#   2. builds the release binaries,
#   3. unit, property and control-plane tests (cargo test),
#   4. brings up the lab (scripts/lab.sh up) and runs the acceptance tests against it, with the
#      appliance forwarding real traffic between network namespaces,
#   5. tears the lab down (also on failure).
# Options: --unit (steps 1-3 only).
set -euo pipefail
cd "$(dirname "$0")/.."

unit_only=0
[ "${1:-}" = "--unit" ] && unit_only=1

bash scripts/setup-host.sh
export PATH="${HOME:-/root}/.cargo/bin:$PATH"

echo "== build"
cargo build --release --bins

echo "== unit and property tests"
cargo test --release

[ $unit_only -eq 1 ] && exit 0

echo "== lab acceptance tests"
trap 'bash scripts/lab.sh down >/dev/null 2>&1 || true' EXIT
bash scripts/lab.sh up
# One test at a time: they share the lab and read its counters.
tests=$(ls tests/lab_*.rs | xargs -n1 basename | sed 's/\.rs$//')
args=()
for t in $tests; do args+=(--test "$t"); done
cargo test --release "${args[@]}" -- --ignored --test-threads=1
