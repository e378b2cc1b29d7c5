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

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${RVS_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
conns=65536 duration=5 loads=10,50,90 cpus=0,0,1 results=$ROOT/bench-results warmup=1 smoke=0
while [ $# -gt 0 ]; do
    case "$1" in
        --conns) conns=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --loads) loads=$2; shift 2 ;;
        --cpus) cpus=$2; shift 2 ;;
        --results) results=$2; shift 2 ;;
        --smoke) conns=256 duration=1 loads=10 smoke=1; shift ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-latency: unknown option $1 (--help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-latency: run as root" >&2; exit 2; }
IFS=, read -r gen_cpu main_cpu worker_cpu <<<"$cpus"
[ -n "${worker_cpu:-}" ] || { echo "bench-latency: --cpus wants GEN,RVS_MAIN,RVS_WORKER" >&2; exit 2; }
for b in rvs rvsadm rvs-pcapgen rvs-pktgen; do
    [ -x "$BIN/$b" ] || { echo "bench-latency: $BIN/$b missing: cargo build --release" >&2; exit 2; }
done

work=$(mktemp -d /tmp/rvs-bench-latency.XXXXXX)
sock=$work/rvs.sock
rvs_pid="" gen_pid=""
cleanup() {
    [ -n "$gen_pid" ] && kill "$gen_pid" 2>/dev/null && wait "$gen_pid" 2>/dev/null
    [ -n "$rvs_pid" ] && kill "$rvs_pid" 2>/dev/null && wait "$rvs_pid" 2>/dev/null
    rm -rf "$work"
    # EAL runtime directories of this run, should a process have been killed before cleanup.
    rm -rf "/var/run/dpdk/rvs-bench-lat-$$" "/var/run/dpdk/rvs-pktgen-$$"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "bench-latency: FAIL: $*" >&2; exit 1; }
adm() { "$BIN/rvsadm" --socket "$sock" "$@"; }

echo "== generating established-udp traffic: $conns flows"
"$BIN/rvs-pcapgen" --scenario established-udp --conns "$conns" --out "$work/pcap" >/dev/null
python3 - "$work/pcap/manifest.json" "$work" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1])); w = sys.argv[2]
neigh = ", ".join(f'"{s["rip"]}" = "{s["real_mac"]}"' for s in m["services"])
open(w + "/neigh", "w").write(neigh)
open(w + "/gwmac", "w").write(m["gateway_mac"])
EOF

cat > "$work/rvs.toml" <<EOF
# rvs for scripts/bench-latency.sh: both ports are net_memif clients of rvs-pktgen, with the
# MACs rvs-pcapgen addresses its frames to.
[eal]
cpus = [$main_cpu, $worker_cpu]
memory_mb = 512
file_prefix = "rvs-bench-lat-$$"
log_level = "error"

[public]
device = "net_memif0"
devargs = "role=client,id=0,socket=$work/pub.sock,socket-abstract=no,rsize=14,mac=02:70:63:61:70:00"
addresses = ["10.0.0.13/24"]
gateway = "10.0.0.1"
neighbours = { "10.0.0.1" = "$(cat "$work/gwmac")" }

[private]
device = "net_memif1"
devargs = "role=client,id=1,socket=$work/priv.sock,socket-abstract=no,rsize=14,mac=02:70:63:61:70:01"
addresses = ["192.168.8.13/24"]
neighbours = { $(cat "$work/neigh") }

[workers]
count = 1

[tables]
connections = $((conns * 5 / 4 + 4096))
mbufs = 32768

[control]
socket = "$sock"

[rules]
file = "$work/pcap/rules"
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
        --duration "$(python3 -c "print($warmup + $duration + 1)")" \
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
    wt=$(ps -T -o tid=,comm= -p "$rvs_pid" | awk '$2 ~ /^rte-worker/ {print $1; exit}')
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
    python3 - "$work/a.json" "$work/b.json" "$duration" "$rate" "$work/gen.json" "$(cat "$work/preempt")" > "$work/row.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
dur, rate = float(sys.argv[3]), int(sys.argv[4])
preempted = int(sys.argv[6] or 0)
gen = json.loads(open(sys.argv[5]).read().strip().splitlines()[-1])
def tot(r, k):
    return sum(p["sw"][k] for p in r["ports"])
rx = tot(b, "rx_packets") - tot(a, "rx_packets")
tx = tot(b, "tx_packets") - tot(a, "tx_packets")
drops = sum(p["sw"]["drops"][i][1] for p in b["ports"] for i in range(len(p["sw"]["drops"]))) - \
        sum(p["sw"]["drops"][i][1] for p in a["ports"] for i in range(len(p["sw"]["drops"])))
by_reason = {}
for pa, pb in zip(a["ports"], b["ports"]):
    for (name, nb), (_, na) in zip(pb["sw"]["drops"], pa["sw"]["drops"]):
        if nb - na:
            by_reason[pa["role"] + ":" + name] = nb - na
hb, ha = {}, {}
for w in b["workers"]:
    for v, n in w["latency"]["buckets"]:
        hb[v] = hb.get(v, 0) + n
for w in a["workers"]:
    for v, n in w["latency"]["buckets"]:
        ha[v] = ha.get(v, 0) + n
win = sorted((v, hb[v] - ha.get(v, 0)) for v in hb if hb[v] - ha.get(v, 0) > 0)
total = sum(n for _, n in win)
def q(f):
    want, seen = max(1, -(-total * f // 1)), 0
    for v, n in win:
        seen += n
        if seen >= want:
            return v
    return 0.0
print(json.dumps({"rate_asked": rate, "rx_pps": rx / dur, "tx_pps": tx / dur, "drops": drops,
                  "drops_by_reason": by_reason, "worker_preempted": preempted,
                  "samples": total, "p50_ns": q(0.5), "p99_ns": q(0.99), "p999_ns": q(0.999),
                  "max_ns": win[-1][0] if win else 0.0, "generator": gen}))
EOF
}

echo "== max rate: rvs-pktgen unpaced (generator CPU $gen_cpu, rvs main CPU $main_cpu, worker CPU $worker_cpu)"
run 0
max=$(cat "$work/row.json")
echo "$max"
max_pps=$(python3 -c "import json,sys; print(int(json.loads(sys.argv[1])['tx_pps']))" "$max")
[ "$max_pps" -gt 0 ] || fail "rvs forwarded nothing"
rows=("$max")
IFS=, read -ra fracs <<<"$loads"
for f in "${fracs[@]}"; do
    r=$((max_pps * f / 100))
    echo "== ${f}% load: $r pps"
    run "$r"
    row=$(cat "$work/row.json")
    echo "$row"
    rows+=("$row")
done

mkdir -p "$results"
out="$results/latency-$conns-$(date -u +%Y%m%dT%H%M%SZ).json"
python3 - "$out" "$conns" "$loads" "$smoke" "$*" "${rows[@]}" <<'EOF'
import json, sys, platform
out, conns, loads, smoke, cmd = sys.argv[1:6]
rows = [json.loads(r) for r in sys.argv[6:]]
fr = [None] + [int(x) for x in loads.split(",")]
ok, why, warnings = True, [], []
print()
print(f"{'load':>6} {'offered pps':>12} {'forwarded pps':>14} {'lost':>8} {'samples':>8} {'p50 ns':>8} {'p99 ns':>8} {'p99.9 ns':>9} {'max ns':>9} {'preempted':>9}")
for f, r in zip(fr, rows):
    offered = r["generator"]["sent_pps"]
    # Lost inside rvs during the window: every drop counter (TX ring full included).
    lost = r["drops"]
    r["load_percent"] = f
    r["lost"] = lost
    print(f"{('max' if f is None else str(f) + '%'):>6} {offered:>12.0f} {r['tx_pps']:>14.0f} {lost:>8} {r['samples']:>8} {r['p50_ns']:>8.0f} {r['p99_ns']:>8.0f} {r['p999_ns']:>9.0f} {r['max_ns']:>9.0f} {r['worker_preempted']:>9}")
    if r["tx_pps"] <= 0 or r["samples"] == 0:
        ok, _ = False, why.append(f"{'max' if f is None else str(f) + '%'} load: nothing forwarded or no latency samples")
    if f is not None:
        # A paced run that lost packets or could not offer its load is not the load it claims.
        # --smoke only checks the machinery (CI machines are shared): warn instead.
        bad = why if smoke == "0" else warnings
        if lost > 0:
            bad.append(f"{f}% load: rvs dropped {lost} packets {r['drops_by_reason']}")
        if r["generator"]["sent_pps"] < 0.95 * r["rate_asked"]:
            bad.append(f"{f}% load: the generator offered only {r['generator']['sent_pps']:.0f} of {r['rate_asked']} pps (CPU contention?)")
ok = ok and not why
for w in warnings:
    print("bench-latency: warning: " + w, file=sys.stderr)
json.dump({"ok": ok, "why": why, "warnings": warnings, "conns": conns, "command": "scripts/bench-latency.sh " + cmd,
           "machine": platform.node(), "runs": rows}, open(out, "w"), indent=1)
print(f"\nresults: {out}")
if not ok:
    print("bench-latency: FAIL: " + "; ".join(why), file=sys.stderr)
    sys.exit(1)
EOF
