#!/usr/bin/env bash
# Installs rvs's binaries, and optionally rvsadm as the system's ipvsadm (for ldirectord).
#
#   scripts/install.sh [--prefix DIR] [--from DIR] [--root DIR]
#       installs rvs and rvsadm into PREFIX/bin (default /usr/local/bin), from the release build
#       (--from, default ${CARGO_TARGET_DIR:-target}/release; build it first with
#       `cargo build --release`).
#   scripts/install.sh --as-ipvsadm [...]
#       also makes rvsadm answer as /sbin/ipvsadm, the path Debian's ldirectord hard-codes (it
#       has no option for it; docs/operations.md, "ldirectord"). The ipvsadm package's binary
#       is moved aside with a local dpkg diversion to /sbin/ipvsadm.ipvsadm (upgrades of the
#       package then write there, and it still runs as `ipvsadm.ipvsadm` against kernel IPVS),
#       and /sbin/ipvsadm becomes a symbolic link to PREFIX/bin/rvsadm. Idempotent.
#   scripts/install.sh --no-ipvsadm [--root DIR]
#       undoes --as-ipvsadm: removes the link and the diversions, the real ipvsadm is back.
#   scripts/install.sh --uninstall [--prefix DIR] [--root DIR]
#       --no-ipvsadm, then removes rvs and rvsadm from PREFIX/bin.
#
# --root DIR acts on a system image in DIR instead of / (dpkg-divert --root): the tests use it
# (scripts/tests/test_install.py). ipvsadm-save and ipvsadm-restore are left alone (they are
# shell wrappers around ipvsadm; ldirectord does not run them).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "install.sh: $*" >&2; exit 1; }

prefix=/usr/local
from=${CARGO_TARGET_DIR:-$(pwd)/target}/release
root=""
mode=install
as_ipvsadm=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --from) from=${2:?--from needs a directory}; shift 2 ;;
        --root) root=${2:?--root needs a directory}; shift 2 ;;
        --as-ipvsadm) as_ipvsadm=1; shift ;;
        --no-ipvsadm) mode=no-ipvsadm; shift ;;
        --uninstall) mode=uninstall; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[ -n "$root" ] && root=$(readlink -f "$root")
[ -n "$root" ] || [ "$(id -u)" -eq 0 ] || die "must run as root"
bindir=$prefix/bin
# The paths ldirectord tries, in its order. On a merged-/usr system (/sbin -> usr/sbin, Debian
# bookworm) both name one file: dpkg registers it as /sbin/ipvsadm, a future package may ship
# /usr/sbin/ipvsadm, so both are diverted (DEP17's advice for aliased paths).
IPVSADM_PATHS=(/sbin/ipvsadm /usr/sbin/ipvsadm)
SUFFIX=.ipvsadm

divert() { dpkg-divert --root "${root:-/}" "$@"; }

# Whose diversion a path has: LOCAL (ours, or another admin's), a package name, or nothing.
diverted_by() { divert --listpackage "$1"; }

is_our_link() { # path: a symbolic link to an rvsadm
    [ -L "$root$1" ] && [ "$(basename "$(readlink "$root$1")")" = rvsadm ]
}

install_bins() {
    for b in rvs rvsadm; do
        [ -x "$from/$b" ] || die "$from/$b not built (cargo build --release, or --from DIR)"
    done
    install -d "$root$bindir"
    install -m 0755 "$from/rvs" "$from/rvsadm" "$root$bindir/"
    echo "install.sh: rvs and rvsadm installed in $bindir"
}

as_ipvsadm() {
    command -v dpkg-divert >/dev/null || die "--as-ipvsadm needs dpkg-divert (Debian)"
    [ -x "$root$bindir/rvsadm" ] || die "$bindir/rvsadm is not installed"
    local p by
    for p in "${IPVSADM_PATHS[@]}"; do
        by=$(diverted_by "$p")
        case "$by" in
            ""|LOCAL) ;;
            *) die "$p is already diverted by the package $by; not touching it" ;;
        esac
        if [ -z "$by" ] && [ -e "$root$p" ] && ! [ -L "$root$p" ] && [ -e "$root$p$SUFFIX" ]; then
            die "$p$SUFFIX exists already; move it away first"
        fi
    done
    for p in "${IPVSADM_PATHS[@]}"; do
        # --rename moves the package's file aside; on a merged /usr the second finds nothing
        # left to move (the first moved the one file both paths name).
        is_our_link "$p" && continue
        divert --local --rename --divert "$p$SUFFIX" --add "$p" >/dev/null
    done
    ln -sfn "$bindir/rvsadm" "$root${IPVSADM_PATHS[0]}"
    # A separate /usr/sbin (not merged): the second path gets its own link.
    is_our_link "${IPVSADM_PATHS[1]}" || ln -sfn "$bindir/rvsadm" "$root${IPVSADM_PATHS[1]}"
    echo "install.sh: ${IPVSADM_PATHS[0]} is now rvsadm ($bindir/rvsadm); the real ipvsadm" \
         "is ${IPVSADM_PATHS[0]}$SUFFIX (undo: scripts/install.sh --no-ipvsadm)"
}

no_ipvsadm() {
    command -v dpkg-divert >/dev/null || die "--no-ipvsadm needs dpkg-divert (Debian)"
    local p by
    for p in "${IPVSADM_PATHS[@]}"; do
        if is_our_link "$p"; then
            rm -f "$root$p"
        elif [ "$(diverted_by "$p")" = LOCAL ] && [ -e "$root$p" ]; then
            die "$p is diverted but is not a link to rvsadm; check it and dpkg-divert --list"
        fi
    done
    # Reverse order: on a merged /usr the file comes back through the last diversion holding it.
    for p in /usr/sbin/ipvsadm /sbin/ipvsadm; do
        by=$(diverted_by "$p")
        [ "$by" = LOCAL ] || continue
        divert --rename --remove "$p" >/dev/null
    done
    echo "install.sh: ${IPVSADM_PATHS[0]} is the ipvsadm package's again"
}

case "$mode" in
    install)
        install_bins
        [ $as_ipvsadm -eq 1 ] && as_ipvsadm
        ;;
    no-ipvsadm) no_ipvsadm ;;
    uninstall)
        no_ipvsadm
        rm -f "$root$bindir/rvs" "$root$bindir/rvsadm"
        echo "install.sh: rvs and rvsadm removed from $bindir"
        ;;
esac
exit 0
