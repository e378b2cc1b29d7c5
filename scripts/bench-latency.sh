#!/usr/bin/env bash
# Added latency of rvs at 10%, 50% and 90% of its maximum rate (issue 5, item 4).
#
#   1. rvs-pcapgen writes established-UDP traffic for --conns flows (requests and replies);
#   2. rvs-pktgen, a second DPDK process, owns two net_memif server ports and replays those
#      packets into rvs (whose two ports are the memif clients), paced on the TSC; it primes
#      every connection first, then offers requests and replies alternately;
#   3. a first run unpaced measures rvs's maximum forwarding rate over memif; then one run per
#      load fraction offers that fraction of it;
#   4. rvs measures its own residence time (RX burst return -> TX burst return, TSC, one burst
#      in 16, per worker: `rvsadm --stats-ports`); the script reads the histogram before and
#      after the measured window and prints p50/p99/p99.9 of the window, per load, and writes
#      JSON to bench-results/.
#
# Usage: scripts/bench-latency.sh [--conns N] [--duration S] [--loads 10,50,90]
#                                 [--cpus GEN,RVS_MAIN,RVS_WORKER] [--results DIR] [--smoke]
# As root, after `cargo build --release`. Exit 1 when a paced run lost packets (the load
# was not what it claims) or rvs forwarded nothing.
set -euo pipefail
PROG=bench-latency
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

conns=65536 duration=5 loads=10,50,90 cpus=0,0,1 results=$ROOT/bench-results warmup=1 smoke=0
cmdline="scripts/bench-latency.sh $*"
while [ $# -gt 0 ]; do
    case "$1" in
        --conns) conns=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --loads) loads=$2; shift 2 ;;
        --cpus) cpus=$2; shift 2 ;;
        --results) results=$2; shift 2 ;;
        --smoke) conns=256 duration=1 loads=10 smoke=1; shift ;;
        -h|--help) usage 0 ;;
        *) die "unknown option $1 (--help)" ;;
    esac
done
need_root
IFS=, read -r gen_cpu main_cpu worker_cpu <<<"$cpus"
[ -n "${worker_cpu:-}" ] || die "--cpus wants GEN,RVS_MAIN,RVS_WORKER"
need_python
need_bins rvs rvsadm rvs-pcapgen rvs-pktgen

work=$(mktemp -d /tmp/rvs-bench-latency.XXXXXX)
sock=$work/rvs.sock
rvs_pid="" gen_pid=""
cleanup() {
    [ -n "$gen_pid" ] && kill "$gen_pid" 2>/dev/null && wait "$gen_pid" 2>/dev/null
    [ -n "$rvs_pid" ] && kill "$rvs_pid" 2>/dev/null && wait "$rvs_pid" 2>/dev/null
    rm -rf "$work"
    # EAL runtime directories of this run, should a process have been killed before cleanup.
    eal_cleanup "rvs-bench-lat-$$" "rvs-pktgen-$$"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== generating established-udp traffic: $conns flows"
"$BIN/rvs-pcapgen" --scenario established-udp --conns "$conns" --out "$work/pcap" >/dev/null
manifest=$work/pcap/manifest.json
gw_mac=$(benchlib gateway-mac "$manifest")
neigh=$(benchlib neigh "$manifest")

benchlib write-config - "$work/rvs.toml" MAIN_CPU="$main_cpu" WORKER_CPU="$worker_cpu" \
    FILE_PREFIX="rvs-bench-lat-$$" WORK="$work" GATEWAY_MAC="$gw_mac" \
    PRIVATE_NEIGHBOURS="$neigh" CONNECTIONS=$((conns * 5 / 4 + 4096)) SOCKET="$sock" <<'EOF'
# rvs for scripts/bench-latency.sh: both ports are net_memif clients of rvs-pktgen, with the
# MACs rvs-pcapgen addresses its frames to.
[eal]
cpus = [@MAIN_CPU@, @WORKER_CPU@]
memory_mb = 512
file_prefix = "@FILE_PREFIX@"
log_level = "error"

[public]
device = "net_memif0"
devargs = "role=client,id=0,socket=@WORK@/pub.sock,socket-abstract=no,rsize=14,mac=02:70:63:61:70:00"
addresses = ["10.0.0.13/24"]
gateway = "10.0.0.1"
neighbours = { "10.0.0.1" = "@GATEWAY_MAC@" }

[private]
device = "net_memif1"
devargs = "role=client,id=1,socket=@WORK@/priv.sock,socket-abstract=no,rsize=14,mac=02:70:63:61:70:01"
addresses = ["192.168.8.13/24"]
neighbours = { @PRIVATE_NEIGHBOURS@ }

[workers]
count = 1

[tables]
connections = @CONNECTIONS@
mbufs = 32768

[control]
socket = "@SOCKET@"

[rules]
file = "@WORK@/pcap/rules"
EOF
"$BIN/rvs" --config "$work/rvs.toml" --check >/dev/null

# One run: rvs-pktgen at RATE (0 = unpaced); writes a JSON object to $work/row.json. Runs in
# this shell (not a subshell) so that the EXIT trap can stop what it started.
run() {
    local rate=$1 glog=$work/gen-$1.log
    rm -f "$work/pub.sock" "$work/priv.sock"
    "$BIN/rvs-pktgen" --public-pcap "$work/pcap/public-q0.pcap" \
        --private-pcap "$work/pcap/private-q0.pcap" --public-socket "$work/pub.sock" \
        --private-socket "$work/priv.sock" --rate "$rate" --cpu "$gen_cpu" \
        --duration "$(benchlib sum "$warmup" "$duration" 1)" \
        --file-prefix "rvs-pktgen-$$" > "$work/gen.json" 2> "$glog" &
    gen_pid=$!
    for _ in $(seq 1 100); do [ -S "$work/pub.sock" ] && [ -S "$work/priv.sock" ] && break; sleep 0.1; done
    RVS_LOG=warn "$BIN/rvs" --config "$work/rvs.toml" > "$work/rvs.log" 2>&1 &
    rvs_pid=$!
    for _ in $(seq 1 600); do
        grep -q running "$glog" 2>/dev/null && break
        kill -0 "$gen_pid" 2>/dev/null || { cat "$glog" "$work/rvs.log" >&2; fail "rvs-pktgen exited"; }
        sleep 0.05
    done
    grep -q running "$glog" || fail "rvs-pktgen did not start sending"
    sleep "$warmup"
    # Involuntary context switches of the worker thread: on a shared machine, each one is a
    # packet burst that waited for the CPU, and the tail of the latency distribution.
    local wt
    wt=$(rte_worker_tids "$rvs_pid")
    wt=${wt%%$'\n'*}
    nvcs() { awk '/^nonvoluntary_ctxt_switches/ {print $2}' "/proc/$rvs_pid/task/$wt/status" 2>/dev/null || echo 0; }
    local cs0 cs1
    cs0=$(nvcs)
    adm --stats-ports --json > "$work/a.json"
    sleep "$duration"
    adm --stats-ports --json > "$work/b.json"
    cs1=$(nvcs)
    echo "$((cs1 - cs0))" > "$work/preempt"
    wait "$gen_pid" || { cat "$glog" >&2; fail "rvs-pktgen failed"; }
    gen_pid=""
    kill "$rvs_pid"; wait "$rvs_pid" 2>/dev/null || true; rvs_pid=""
    benchlib latency-row --before "$work/a.json" --after "$work/b.json" --duration "$duration" \
        --rate "$rate" --generator "$work/gen.json" --preempted "$(cat "$work/preempt")" \
        > "$work/row.json"
}

echo "== max rate: rvs-pktgen unpaced (generator CPU $gen_cpu, rvs main CPU $main_cpu, worker CPU $worker_cpu)"
run 0
cat "$work/row.json"
max_pps=$(benchlib latency-max-pps "$work/row.json")
[ "$max_pps" -gt 0 ] || fail "rvs forwarded nothing"
mv "$work/row.json" "$work/row-max.json"
rows=("$work/row-max.json")
IFS=, read -ra fracs <<<"$loads"
for f in "${fracs[@]}"; do
    r=$((max_pps * f / 100))
    echo "== ${f}% load: $r pps"
    run "$r"
    cat "$work/row.json"
    mv "$work/row.json" "$work/row-${#rows[@]}.json"
    rows+=("$work/row-${#rows[@]}.json")
done

mkdir -p "$results"
out="$results/latency-$conns-$(date -u +%Y%m%dT%H%M%SZ).json"
benchlib latency-report --out "$out" --conns "$conns" --loads "$loads" --smoke "$smoke" \
    --command "$cmdline" "${rows[@]}"
