# shellcheck shell=bash
# What the benchmark scripts (bench.sh, bench-http.sh, bench-latency.sh) share; sourced, not run:
#
#   PROG=bench; . "$(dirname "$0")/lib.sh"
#
# Sets ROOT (the repository), BIN (the binaries: $RVS_BIN_DIR, else
# ${CARGO_TARGET_DIR:-$ROOT/target}/release), PY (Debian's python3: starts fast and does not
# depend on the caller's PATH) and BENCHLIB (scripts/benchlib.py, the scripts' computing half),
# and defines the helpers below. Messages start with "$PROG: ". Changes neither the working
# directory nor shell options.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${RVS_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
BENCHLIB=$ROOT/scripts/benchlib.py
: "${PROG:=$(basename "$0" .sh)}"

die() { echo "$PROG: $*" >&2; exit 2; }            # usage and setup errors: exit 2
fail() { echo "$PROG: FAIL: $*" >&2; exit 1; }     # the run did not check out: exit 1
warn() { echo "$PROG: warning: $*" >&2; }

# shellcheck disable=SC2120  # the argument is optional
usage() { # [status]: the script's header comment (line 2 up to `set -euo`), then exit
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

benchlib() { "$PY" "$BENCHLIB" "$@"; }

# shellcheck disable=SC2120  # the argument is optional
need_root() { # [what for]
    [ "$(id -u)" -eq 0 ] || die "must run as root${1:+ ($1)}"
}

need_python() {
    command -v "$PY" >/dev/null || die "python3 is needed (scripts/setup-host.sh installs it)"
}

need_bins() { # name...: each must be an executable in $BIN
    local b
    for b in "$@"; do
        [ -x "$BIN/$b" ] || die "$BIN/$b not found: run 'cargo build --release' (or set RVS_BIN_DIR)"
    done
}

positive_ints() { # varname...: each variable must hold a positive integer (option --varname)
    local v
    for v in "$@"; do
        if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -eq 0 ]; then
            die "--$v must be a positive integer"
        fi
    done
}

# rvsadm on this run's private control socket ($sock, set by the caller).
adm() { "$BIN/rvsadm" --socket "${sock:?}" "$@"; }

rte_worker_tids() { # pid: the thread ids of its DPDK worker threads (rte-worker-N), one per line
    ps -T -o tid=,comm= -p "$1" | awk '$2 ~ /^rte-worker/ {print $1}'
}

eal_cleanup() { # file-prefix...: remove these EAL runtime directories and hugepage files (a killed DPDK process
                # leaves its own; testpmd never removes its own)
    local p
    for p in "$@"; do
        # Never a bare or relative name: /var/run/dpdk/ also holds the lab's rvs-lab.
        [[ $p =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || continue
        rm -rf "/var/run/dpdk/$p"
        # A killed primary's hugepage files keep their pages until unlinked.
        rm -f /dev/hugepages/"$p"map_[0-9]*
    done
}
