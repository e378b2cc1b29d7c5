#!/usr/bin/env bash
# Runs every test of rvs on a Debian host, as root:
#   1. installs what the build and the lab need (scripts/setup-host.sh: packages, hugepages),
#   2. builds the release binaries,
#   3. unit, property, control-plane and DPDK virtual-port tests (cargo test), the benchmark
#      scripts' tests (scripts/tests: benchlib.py and lib.sh), then the format check and clippy
#      with warnings denied,
#   4. brings up the lab (scripts/lab.sh up) and runs the acceptance tests against it, with the
#      appliance forwarding real traffic between network namespaces,
#   5. tears the lab down (also on failure).
# Every test binary runs even when an earlier one failed (--no-fail-fast); the failures are
# listed at the end and the exit status is 1 if there was any.
# Options: --unit (steps 1-3 only).
set -uo pipefail
cd "$(dirname "$0")/.."

unit_only=0
[ "${1:-}" = "--unit" ] && unit_only=1

failed=()
stage() { # name command...: runs it; a failure is remembered (status 1) and the run goes on.
    # Each stage says how long it took, so that a slow run shows where its time went.
    local name=$1 t0=$SECONDS
    shift
    echo "== $name"
    if "$@"; then
        echo "== $name: ok ($((SECONDS - t0)) s)"
        return 0
    fi
    echo "== $name: FAILED ($((SECONDS - t0)) s)" >&2
    failed+=("$name")
    return 1
}
finish() {
    echo
    if [ ${#failed[@]} -eq 0 ]; then
        echo "== test.sh: all stages passed ($SECONDS s)"
        exit 0
    fi
    echo "== test.sh: FAILED stages (the cargo output above names each failing test):" >&2
    for f in "${failed[@]}"; do echo "   - $f" >&2; done
    exit 1
}

bash scripts/setup-host.sh || { echo "test.sh: host setup failed" >&2; exit 1; }
export PATH="${HOME:-/root}/.cargo/bin:$PATH"

echo "== build"
cargo build --release --workspace --bins || { echo "test.sh: build failed" >&2; exit 1; }

stage "unit, property and DPDK virtual-port tests" \
    cargo test --release --workspace --no-fail-fast || true
# The sans-IO core and the control plane (rvsadm) build and test where DPDK cannot be found.
stage "core and control crates without DPDK" env PKG_CONFIG_LIBDIR=/nonexistent \
    cargo test --release -p rvs-net -p rvs-lb -p rvs-ctl -p rvs-checks -p rvs-metrics --quiet || true
# The benchmark scripts' computing half (scripts/benchlib.py) and shared shell (scripts/lib.sh).
stage "benchmark scripts (python unittest scripts/tests)" \
    /usr/bin/python3 -m unittest discover -s scripts/tests || true
stage "format (cargo fmt --check)" cargo fmt --all --check || true
stage "lints (cargo clippy -D warnings)" \
    cargo clippy --release --workspace --all-targets --quiet -- -D warnings || true

[ $unit_only -eq 1 ] && finish

trap 'bash scripts/lab.sh down >/dev/null 2>&1 || true' EXIT
if stage "lab up" bash scripts/lab.sh up; then
    # One test at a time: they share the lab and read its counters.
    args=()
    for t in tests/lab_*.rs; do
        t=$(basename "$t" .rs)
        args+=(--test "$t")
    done
    stage "lab acceptance tests" \
        cargo test --release --no-fail-fast "${args[@]}" -- --ignored --test-threads=1 || true
fi
bash scripts/lab.sh down >/dev/null 2>&1 || true
trap - EXIT
finish
