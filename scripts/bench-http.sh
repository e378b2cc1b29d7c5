#!/usr/bin/env bash
# Real HTTP traffic through the lab, side by side: rvs, then the Linux kernel's own NAT load
# balancing on the identical namespace topology.
#
#   1. installs wrk and nftables (apt-get) if missing; brings up the lab (scripts/lab.sh up) if it
#      is not up, starts rvs if it is not running;
#   2. rvs: VIP 10.0.0.13:80, rr over RS1 192.168.8.14:80 and RS2 192.168.8.15:80 (rvsadm);
#      wrk runs in netns rvs-client against http://10.0.0.13/ (a warm-up, then --duration s);
#   3. rvs is stopped and the kernel takes its place: the two root-namespace veth ends rvs used
#      as its ports (rvs-pub, rvs-priv) move into a new netns rvs-kdir with 10.0.0.13/24 and
#      192.168.8.13/24, ip_forward=1, and an nftables DNAT
#        ip daddr 10.0.0.13 tcp dport 80 dnat to numgen inc mod 2 map { 0 : 192.168.8.14, 1 : 192.168.8.15 }
#      (round robin, as rr; the real servers' default route is already 192.168.8.13, so no SNAT:
#      LVS-NAT's shape, with conntrack undoing the DNAT on replies); wrk again, same options;
#   4. the lab is put back as it was, also on failure or interruption: the ends move back to the
#      root namespace (no address, IPv6 off, offloads off, up), rvs-kdir is deleted; if rvs was
#      running before, it is started again with its workers/driver and its rules (services,
#      real servers, mark rules, timeouts) are restored; a lab this script brought up is taken
#      down again (unless --keep-lab);
#   5. a side-by-side table (requests/s, latency p50/p90/p99/max from wrk --latency, errors,
#      which real server answered how often) and JSON in bench-results/.
# The run fails (exit 1) if either side had socket errors, timeouts or non-2xx answers, a body
# from neither real server, or did not use both real servers.
#
# Usage: scripts/bench-http.sh [options]          (as root; build first: cargo build --release)
#   --duration S     measured seconds per side (default 10)
#   --warmup S       wrk warm-up per side, not measured (default 2)
#   --threads T      wrk threads (default 2)
#   --connections C  wrk connections, total (default 32)
#   --timeout S      wrk request timeout (default 5)
#   --only rvs|kernel  run one side only
#   --results DIR    where the JSON goes (default bench-results)
#   --keep-lab       leave the lab up (with rvs) even if this script brought it up
# Binaries: $RVS_BIN_DIR, else ${CARGO_TARGET_DIR:-target}/release.
set -euo pipefail
PROG=bench-http
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

duration=10
warmup=2
threads=2
connections=32
timeout=5
only=""
results=bench-results
keep_lab=0
cmdline="scripts/bench-http.sh $*"

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration=${2:?}; shift ;;
        --warmup) warmup=${2:?}; shift ;;
        --threads) threads=${2:?}; shift ;;
        --connections) connections=${2:?}; shift ;;
        --timeout) timeout=${2:?}; shift ;;
        --only) only=${2:?}; shift ;;
        --results) results=${2:?}; shift ;;
        --keep-lab) keep_lab=1 ;;
        -h|--help) usage ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
positive_ints duration threads connections timeout
[[ $warmup =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer"
[ "$connections" -ge "$threads" ] || die "--connections must be at least --threads"
case "$only" in ""|rvs|kernel) ;; *) die "--only must be rvs or kernel" ;; esac
need_root
need_python
need_bins rvs rvsadm
export RVS_BIN="$BIN/rvs" RVSADM_BIN="$BIN/rvsadm"
ADM="$BIN/rvsadm"
LAB="$ROOT/scripts/lab.sh"
VIP=10.0.0.13
RS_IP=(192.168.8.14 192.168.8.15)
KNS=rvs-kdir
PORTS=(rvs-pub rvs-priv)

# ---- 1. tools and lab -------------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nft >/dev/null || need+=(nftables)
command -v curl >/dev/null || need+=(curl)
command -v ethtool >/dev/null || need+=(ethtool)
if [ ${#need[@]} -gt 0 ]; then
    echo "== apt-get install ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null \
        || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y \
             --no-install-recommends "${need[@]}" >/dev/null; } || die "cannot install ${need[*]}"
fi
ip netns list | grep -qw "$KNS" && die "netns $KNS exists: a previous run did not clean up (see its output; 'ip netns del $KNS' deletes the lab's veth ends with it: run scripts/lab.sh up afterwards)"

work=$(mktemp -d /tmp/rvs-bench-http.XXXXXX)
lab_was_up=0
rvs_was_running=0
if ip netns list | grep -qw rvs-client && ip link show rvs-pub >/dev/null 2>&1; then
    lab_was_up=1
    if "$ADM" --stats-ports >/dev/null 2>&1; then rvs_was_running=1; fi
fi
rvs_workers=1
rvs_driver=af_packet
if [ $rvs_was_running -eq 1 ]; then
    # What to restore at the end: how rvs ran, and its rules.
    if [ -f /run/rvs/lab.toml ]; then
        rvs_workers=$(awk '/^\[workers\]/{w=1} w && /^count *=/{print $3; exit}' /run/rvs/lab.toml)
        grep -q net_af_xdp /run/rvs/lab.toml && rvs_driver=af_xdp
    fi
    "$ADM" -S -n > "$work/saved-services"
    "$ADM" --list-marks > "$work/saved-marks"
    "$ADM" -L --timeout > "$work/saved-timeouts"
fi

# CPU time of the whole machine (/proc/stat), to say how busy both sides kept it.
cpu_stat() { awk '/^cpu / {print $2+$3, $4, $5+$6, $7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

kernel_up=0
restore_lab() {
    # Put the veth ends back where rvs expects them, exactly as scripts/lab.sh leaves them.
    if ip netns list | grep -qw "$KNS"; then
        for ifc in "${PORTS[@]}"; do
            if ip -n "$KNS" link show "$ifc" >/dev/null 2>&1; then
                ip -n "$KNS" link set "$ifc" down || true
                ip -n "$KNS" addr flush dev "$ifc" || true
                ip -n "$KNS" link set "$ifc" netns $$ || echo "$PROG: cannot move $ifc back" >&2
            fi
        done
        ip netns del "$KNS" || true
    fi
    if [ $kernel_up -eq 1 ]; then
        for ifc in "${PORTS[@]}"; do
            if ip link show "$ifc" >/dev/null 2>&1; then
                sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" || true
                ethtool -K "$ifc" rx off tx off tso off gso off gro off lro off >/dev/null 2>&1 || true
                ip addr flush dev "$ifc" || true
                ip link set "$ifc" up
            else
                echo "$PROG: $ifc is gone: the lab is broken, run scripts/lab.sh up" >&2
            fi
        done
        kernel_up=0
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e   # put back as much as possible, whatever fails
    restore_lab
    if [ $lab_was_up -eq 0 ] && [ $keep_lab -eq 0 ]; then
        bash "$LAB" down >/dev/null 2>&1 || true
        echo "== lab down (this script brought it up)"
    elif [ $rvs_was_running -eq 1 ] || { [ $lab_was_up -eq 0 ] && [ $keep_lab -eq 1 ]; }; then
        if ! "$ADM" --stats-ports >/dev/null 2>&1; then
            bash "$LAB" start-rvs --workers "$rvs_workers" --driver "$rvs_driver" >/dev/null \
                || { echo "$PROG: could not restart rvs" >&2; rc=1; }
        fi
        if [ $rvs_was_running -eq 1 ] && "$ADM" --stats-ports >/dev/null 2>&1; then
            # The rules rvs had: services and real servers, mark rules, timeouts.
            "$ADM" -C
            "$ADM" --list-marks | while read -r -a m; do
                [ ${#m[@]} -gt 0 ] && "$ADM" --del-mark "${m[@]:1}"
            done
            cat "$work/saved-marks" "$work/saved-services" | "$ADM" -R \
                || { echo "$PROG: could not restore rvs's rules ($work)" >&2; rc=1; }
            read -r -a t < <(grep -o '[0-9]\+ [0-9]\+ [0-9]\+' "$work/saved-timeouts")
            [ ${#t[@]} -eq 3 ] && "$ADM" --set "${t[@]}"
            echo "== rvs running again with its rules"
        fi
    elif [ $lab_was_up -eq 1 ] && [ $rvs_was_running -eq 0 ]; then
        bash "$LAB" stop-rvs   # this script started it
    fi
    if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "$PROG: scratch directory kept: $work" >&2; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ $lab_was_up -eq 0 ]; then
    echo "== bringing up the lab"
    bash "$LAB" up >/dev/null
elif [ $rvs_was_running -eq 0 ] && [ "$only" != kernel ]; then
    echo "== starting rvs in the lab"
    bash "$LAB" start-rvs >/dev/null
fi

cat > "$work/count.lua" <<'EOF'
-- Which real server answered (its body says "hello RS1" / "hello RS2"), and non-2xx answers;
-- done() prints one JSON line with wrk's own summary and latency percentiles (microseconds).
local threads = {}
function setup(thread)
    table.insert(threads, thread)
end
function init(args)
    rs1, rs2, other, bad = 0, 0, 0, 0
end
function response(status, headers, body)
    if status < 200 or status > 299 then bad = bad + 1 end
    if string.find(body, "hello RS1", 1, true) then rs1 = rs1 + 1
    elseif string.find(body, "hello RS2", 1, true) then rs2 = rs2 + 1
    else other = other + 1 end
end
function done(summary, latency, requests)
    local r1, r2, o, b = 0, 0, 0, 0
    for _, t in ipairs(threads) do
        r1 = r1 + t:get("rs1"); r2 = r2 + t:get("rs2")
        o = o + t:get("other"); b = b + t:get("bad")
    end
    local e = summary.errors
    io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
        '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
        '"latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, "p50": %d, "p90": %d, ' ..
        '"p99": %d, "p999": %d, "max": %d}, "by_rs": {"RS1": %d, "RS2": %d, "other": %d}, ' ..
        '"non_2xx": %d}\n',
        summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
        e.status, e.timeout, latency.min, latency.mean, latency.stdev,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, r1, r2, o, b))
end
EOF

check_vip() { # side: a few plain requests through the VIP must reach both real servers
    local seen="" _ body
    for _ in $(seq 1 20); do
        body=$(ip netns exec rvs-client curl -s -m 2 "http://$VIP/" || true)
        case "$body" in *"hello RS1"*) seen="$seen 1" ;; *"hello RS2"*) seen="$seen 2" ;; esac
        [[ $seen == *1* && $seen == *2* ]] && return 0
    done
    fail "$1: requests to http://$VIP/ from rvs-client do not reach both real servers (got:$seen)"
}

run_wrk() { # side
    local side=$1
    if [ "$warmup" -gt 0 ]; then
        ip netns exec rvs-client wrk -t"$threads" -c"$connections" -d"${warmup}s" \
            --timeout "${timeout}s" "http://$VIP/" > "$work/wrk-$side-warmup.txt" 2>&1 || true
    fi
    echo "== $side: wrk -t$threads -c$connections -d${duration}s --latency http://$VIP/"
    local c0 c1
    c0=$(cpu_stat)
    ip netns exec rvs-client wrk -t"$threads" -c"$connections" -d"${duration}s" \
        --timeout "${timeout}s" --latency -s "$work/count.lua" "http://$VIP/" \
        > "$work/wrk-$side.txt" 2>&1 || { cat "$work/wrk-$side.txt" >&2; fail "$side: wrk failed"; }
    c1=$(cpu_stat)
    echo "$c0" > "$work/cpu-$side-before"
    echo "$c1" > "$work/cpu-$side-after"
    grep -q '^WRKJSON ' "$work/wrk-$side.txt" || { cat "$work/wrk-$side.txt" >&2; fail "$side: no summary from wrk"; }
}

sides=()
# ---- 2. rvs ----------------------------------------------------------------------------------
if [ "$only" != kernel ]; then
    "$ADM" -C
    "$ADM" -A -t "$VIP:80" -s rr
    for ip in "${RS_IP[@]}"; do "$ADM" -a -t "$VIP:80" -r "$ip:80" -m -w 1; done
    check_vip rvs
    run_wrk rvs
    "$ADM" -L -n --stats > "$work/rvs-list.txt"
    "$ADM" --stats-ports --json > "$work/rvs-ports.json"
    sides+=(rvs)
fi

# ---- 3. the kernel ---------------------------------------------------------------------------
if [ "$only" != rvs ]; then
    echo "== stopping rvs; the kernel's NAT on the same veth ends (netns $KNS)"
    bash "$LAB" stop-rvs
    kernel_up=1
    ip netns add "$KNS"
    ip -n "$KNS" link set lo up
    ip netns exec "$KNS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$KNS" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    for ifc in "${PORTS[@]}"; do ip link set "$ifc" netns "$KNS"; done
    ip -n "$KNS" addr add "$VIP/24" dev rvs-pub
    ip -n "$KNS" addr add 192.168.8.13/24 dev rvs-priv
    for ifc in "${PORTS[@]}"; do ip -n "$KNS" link set "$ifc" up; done
    ip netns exec "$KNS" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$KNS" nft -f - <<EOF
table ip rvs_kdir {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport 80 dnat to numgen inc mod 2 map { 0 : ${RS_IP[0]}, 1 : ${RS_IP[1]} }
    }
}
EOF
    ip netns exec "$KNS" nft list ruleset > "$work/kernel-ruleset.txt"
    check_vip kernel
    run_wrk kernel
    ip netns exec "$KNS" cat /proc/sys/net/netfilter/nf_conntrack_count > "$work/kernel-conntrack" 2>/dev/null || true
    sides+=(kernel)
fi

# ---- 4. results ------------------------------------------------------------------------------
mkdir -p "$results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$results/http-$stamp.json"
benchlib http-report --work "$work" --out "$out" --command "$cmdline" --vip "$VIP" \
    --duration "$duration" --warmup "$warmup" --threads "$threads" \
    --connections "$connections" --timeout "$timeout" "${sides[@]}"
