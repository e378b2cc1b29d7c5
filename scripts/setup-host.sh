#!/usr/bin/env bash
# Prepares a Debian (bookworm) host to build, run and test rvs. Idempotent; run as root.
#   - Debian packages: DPDK 22.11 (runtime, headers, tools), clang/libclang for bindgen,
#     pkg-config, the lab's tools (iproute2, ping, arping, curl, ethtool, tcpdump, socat,
#     python3 for the real servers' HTTP server, hping3 and scapy for the exception-path tests, keepalived to cross-check the
#     keepalived.conf parser, ldirectord for tests/lab_ldirectord.rs: Debian's own driving rvsadm,
#     prometheus and promtool for tests/lab_metrics.rs).
#   - Rust: uses the toolchain on PATH (rustup's); fails with a clear message if there is none.
#   - Hugepages: reserves RVS_HUGEPAGES 2 MiB pages (default 1024 = 2 GiB) and mounts hugetlbfs.
set -euo pipefail

PKGS=(dpdk dpdk-dev libdpdk-dev clang libclang-dev pkg-config build-essential
      iproute2 iputils-ping arping curl ethtool tcpdump socat python3 procps kmod
      hping3 python3-scapy keepalived ldirectord prometheus)

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host.sh: must run as root" >&2
    exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-host: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    for d in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin; do
        [ -x "$d/cargo" ] && export PATH="$d:$PATH" && break
    done
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup-host: no Rust toolchain on PATH (install rustup: https://rustup.rs)" >&2
    exit 1
fi

pkg-config --atleast-version=22.11 libdpdk || { echo "setup-host: libdpdk >= 22.11 not found" >&2; exit 1; }

want=${RVS_HUGEPAGES:-1024}
have=$(cat /proc/sys/vm/nr_hugepages)
if [ "$have" -lt "$want" ]; then
    echo "$want" > /proc/sys/vm/nr_hugepages || true
    have=$(cat /proc/sys/vm/nr_hugepages)
    if [ "$have" -lt "$want" ]; then
        echo "setup-host: only $have of $want hugepages could be reserved (memory fragmented?);" \
             "rvs can still run with eal.no_huge = true" >&2
    fi
fi
if ! grep -qs ' /dev/hugepages hugetlbfs' /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages
fi
echo "setup-host: ok ($(pkg-config --modversion libdpdk), $(cat /proc/sys/vm/nr_hugepages) hugepages)"
