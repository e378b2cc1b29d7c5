#!/usr/bin/env bash
# Forwarding benchmark of rvs against dpdk-testpmd, on one machine, without a NIC.
#
#   1. rvs-pcapgen writes the scenario's traffic (client -> VIP on the public port, real server
#      -> client replies on the private port) as pcap files;
#   2. rvs runs with both ports as DPDK net_pcap devices replaying those files forever
#      (infinite_rx=1; what rvs transmits is counted and dropped), with a private control socket
#      and EAL file prefix, a rules file configuring the VIP and its real servers;
#   3. after a warm-up (every connection established), the port and service counters are read
#      before and after a fixed duration: forwarded Mpps, and the hit ratios that prove the
#      scenario is right (every reply finds the connection its request created);
#   4. dpdk-testpmd replays the same files on the same cores in io and 5tswap modes, and rvs's
#      rate is reported as a ratio to each (the machine is shared and noisy: only same-run
#      ratios mean something);
#   5. a table on stdout, and JSON in bench-results/.
#
# Usage: scripts/bench.sh [options]      (as root; build first: cargo build --release)
#   --scenario S     established-udp (default) | established-tcp | syn
#   --conns N        distinct client endpoints (default 65536; --smoke: 256)
#   --duration S     measured seconds (default 10; --smoke: 1)
#   --warmup S       seconds before measuring (default 3; --smoke: 1)
#   --workers N      rvs workers = testpmd forwarding cores (default 1)
#   --cpus LIST      CPUs, management/main first (default 0,1)
#   --size B         wire frame size incl. FCS (default 64)   --imix  simple IMIX 7:4:1
#   --reals K        real servers (default 1)    --acks A  TCP data segments per flow (default 1)
#   --rounds R       UDP datagrams per flow (default 1)
#   --steer M        owner (default: each flow on its owner worker's queue) | spray (handover)
#   --huge M         auto (default: raise nr_hugepages if short, else no_huge) | yes | no
#   --no-testpmd     skip the testpmd reference runs
#   --perf           also run `perf stat` on the rvs worker thread during the measurement
#   --results DIR    where the JSON goes (default bench-results)
#   --keep           keep the scratch directory (pcaps, configs, logs)
#   --smoke          tiny and quick: checks the machinery, measures nothing worth keeping
#   --edits-per-sec N  reconfiguration under load (established scenarios): after the measured
#                    window, a window of --duration s while tests/tools/ctl_edits.py applies N
#                    edits/s on the control socket (weights of the live real servers, an extra
#                    real server and an unrelated service added and removed), then one more
#                    without; reports the edits achieved, errors, Mpps against the windows
#                    without edits, and fails if any packet of an existing connection is lost,
#                    an edit is refused, or fewer than 95% of N edits/s are acknowledged
#   --sweep          one run per --sweep-conns value (other options passed on), then
#                    scripts/plot-bench.py plots Mpps against connections into --plot
#   --sweep-conns L  comma-separated connection counts (default 1024,65536,1048576)
#   --plot FILE      the SVG --sweep writes (default docs/img/mpps-vs-conns.svg)
#   --scrape-every S Prometheus scraping (established scenarios; issue 14): rvs serves
#                    [metrics] on 127.0.0.1:19642 with --scrape-services extra services of 10
#                    real servers each in its table; after the measured window, a window of
#                    --duration s while Debian's prometheus (on the management CPU) scrapes it
#                    every S s, then one more without; reports Mpps against the windows without,
#                    the scrapes Prometheus recorded and their duration. 0: off
#   --scrape-services N  services added for --scrape-every (default 1000)
#   --kernel-flood N the exception path idle vs. flooded (established scenarios; issue 11): the
#                    private port has a kernel twin in every run (in a network namespace of the
#                    run's own, so that its address never meets the lab's twins); rvs is started
#                    --kernel-pairs times with a host-bound UDP datagram (real server -> DIP:9)
#                    after every N replies in the private pcap (flooded), each time between two
#                    runs with the plain pcap (idle); reports NAT Mpps idle and flooded (median,
#                    spread, ratio), to_kernel/s against the rate limit, kernel_drops/s, the hit
#                    ratios, and fails if the flood did not reach the limit. No testpmd. 0: off
#   --kernel-rate R  the twin's kernel_rate, packets/s (default 20000)
#   --kernel-pairs K flooded runs (default 3), so K + 1 idle ones
#   --kernel-backend B  auto (default) | tap | virtio-user
# Exit status: 0 when the scenario checked out, 1 when it did not (the numbers are then wrong,
# and the reason is printed), 2 on usage errors.
# Binaries: $RVS_BIN_DIR, else ${CARGO_TARGET_DIR:-target}/release.
set -euo pipefail
PROG=bench
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

scenario=established-udp
conns=""
duration=""
warmup=""
workers=1
cpus="0,1"
size=64
imix=0
reals=1
acks=1
rounds=1
steer=owner
huge=auto
testpmd=1
perf=0
results=bench-results
keep=0
smoke=0
edits=0
scrape=0
scrape_services=1000
sweep=0
sweep_conns=1024,65536,1048576
plot=docs/img/mpps-vs-conns.svg
kflood=0
krate=20000
kpairs=3
kbackend=auto
orig_args=("$@")
cmdline="scripts/bench.sh $*"

while [ $# -gt 0 ]; do
    case "$1" in
        --scenario) scenario=${2:?}; shift ;;
        --conns) conns=${2:?}; shift ;;
        --duration) duration=${2:?}; shift ;;
        --warmup) warmup=${2:?}; shift ;;
        --workers) workers=${2:?}; shift ;;
        --cpus) cpus=${2:?}; shift ;;
        --size) size=${2:?}; shift ;;
        --imix) imix=1 ;;
        --reals) reals=${2:?}; shift ;;
        --acks) acks=${2:?}; shift ;;
        --rounds) rounds=${2:?}; shift ;;
        --steer) steer=${2:?}; shift ;;
        --huge) huge=${2:?}; shift ;;
        --no-testpmd) testpmd=0 ;;
        --perf) perf=1 ;;
        --results) results=${2:?}; shift ;;
        --keep) keep=1 ;;
        --smoke) smoke=1 ;;
        --edits-per-sec) edits=${2:?}; shift ;;
        --scrape-every) scrape=${2:?}; shift ;;
        --scrape-services) scrape_services=${2:?}; shift ;;
        --sweep) sweep=1 ;;
        --sweep-conns) sweep_conns=${2:?}; sweep=1; shift ;;
        --plot) plot=${2:?}; shift ;;
        --kernel-flood) kflood=${2:?}; shift ;;
        --kernel-rate) krate=${2:?}; shift ;;
        --kernel-pairs) kpairs=${2:?}; shift ;;
        --kernel-backend) kbackend=${2:?}; shift ;;
        -h|--help) usage ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

if [ $smoke -eq 1 ]; then
    conns=${conns:-256}; duration=${duration:-1}; warmup=${warmup:-1}
else
    conns=${conns:-65536}; duration=${duration:-10}; warmup=${warmup:-3}
fi
case "$scenario" in established-udp|established-tcp|syn) ;; *) die "bad --scenario $scenario" ;; esac
case "$steer" in owner|spray) ;; *) die "bad --steer $steer" ;; esac
case "$huge" in auto|yes|no) ;; *) die "bad --huge $huge" ;; esac
positive_ints conns duration warmup workers size reals acks rounds
[[ $edits =~ ^[0-9]+$ ]] || die "--edits-per-sec must be a non-negative integer"
if [ "$edits" -gt 0 ] && [ "$scenario" = syn ]; then
    die "--edits-per-sec needs an established scenario (syn has no existing connections)"
fi
[[ $scrape =~ ^[0-9]+$ ]] || die "--scrape-every must be a non-negative integer (seconds)"
[[ $scrape_services =~ ^[0-9]+$ ]] && [ "$scrape_services" -le 4000 ] ||
    die "--scrape-services must be 0..4000"
if [ "$scrape" -gt 0 ]; then
    [ "$scenario" != syn ] || die "--scrape-every needs an established scenario"
    [ "$edits" -eq 0 ] || die "--scrape-every does not combine with --edits-per-sec"
    command -v prometheus >/dev/null || die "--scrape-every needs prometheus (apt-get install prometheus)"
fi
[[ $sweep_conns =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--sweep-conns must be a comma-separated list of counts"
[[ $cpus =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--cpus must be a comma-separated list of CPU numbers"
ncpus=$(echo "$cpus" | tr ',' '\n' | wc -l)
[ "$ncpus" -ge 2 ] || die "--cpus needs at least 2 CPUs (management + worker)"
[[ $kflood =~ ^[0-9]+$ ]] || die "--kernel-flood must be a non-negative integer"
if [ "$kflood" -gt 0 ]; then
    [ "$scenario" != syn ] || die "--kernel-flood needs an established scenario (the flood rides on the replies)"
    [ "$edits" -eq 0 ] || die "--kernel-flood does not combine with --edits-per-sec"
    [ $sweep -eq 0 ] || die "--kernel-flood does not combine with --sweep"
    { [[ $krate =~ ^[0-9]+$ ]] && [ "$krate" -ge 1 ] && [ "$krate" -le 10000000 ]; } ||
        die "--kernel-rate must be 1..10000000 packets per second"
    { [[ $kpairs =~ ^[0-9]+$ ]] && [ "$kpairs" -ge 1 ]; } || die "--kernel-pairs must be a positive integer"
    case "$kbackend" in auto|tap|virtio-user) ;; *) die "bad --kernel-backend $kbackend" ;; esac
    command -v ip >/dev/null || die "--kernel-flood needs ip (iproute2)"
    testpmd=0   # the reference of this mode is the idle run, not testpmd
fi
need_root DPDK
need_python
need_bins rvs rvsadm rvs-pcapgen
TESTPMD=$(command -v dpdk-testpmd || true)
if [ $testpmd -eq 1 ] && [ -z "$TESTPMD" ]; then
    echo "$PROG: dpdk-testpmd not found (package dpdk): skipping the reference runs" >&2
    testpmd=0
fi

if [ $sweep -eq 1 ]; then
    # One invocation of this script per connection count, the other options unchanged; then
    # the plot of exactly those runs.
    pass=()
    skip=0
    for a in "${orig_args[@]}"; do
        if [ $skip -eq 1 ]; then skip=0; continue; fi
        case "$a" in
            --sweep) ;;
            --sweep-conns|--plot|--conns|--results) skip=1 ;;
            *) pass+=("$a") ;;
        esac
    done
    mkdir -p "$results"
    sweep_files=()
    sweep_failed=()
    IFS=, read -r -a sweep_list <<< "$sweep_conns"
    for c in "${sweep_list[@]}"; do
        echo "== sweep: --conns $c"
        mark=$(mktemp /tmp/rvs-sweep.XXXXXX)
        rc=0
        bash "$0" "${pass[@]}" --conns "$c" --results "$results" || rc=$?
        f=$(find "$results" -maxdepth 1 -name "*-$c-w*.json" -newer "$mark" | sort | tail -1)
        rm -f "$mark"
        [ -n "$f" ] && sweep_files+=("$f")
        [ $rc -eq 0 ] || sweep_failed+=("$c")
    done
    [ ${#sweep_files[@]} -gt 0 ] || { echo "$PROG: sweep: no results" >&2; exit 1; }
    mkdir -p "$(dirname "$plot")"
    "$PY" "$ROOT/scripts/plot-bench.py" --out "$plot" "${sweep_files[@]}"
    [ ${#sweep_failed[@]} -eq 0 ] || fail "sweep runs that did not check out: ${sweep_failed[*]}"
    exit 0
fi

work=$(mktemp -d /tmp/rvs-bench.XXXXXX)
prefix="rvs-bench-$$"
sock="$work/rvs.sock"
rvs_pid=""
tp_pid=""
ed_pid=""
hp_orig=""
hp_file=/proc/sys/vm/nr_hugepages

stop_pid() { # pid: SIGINT, then SIGKILL after 20 s; only processes this script started
    local p=$1 _
    [ -n "$p" ] || return 0
    kill -INT "$p" 2>/dev/null || return 0
    for _ in $(seq 1 200); do
        kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    stop_pid "$ed_pid"
    stop_pid "$tp_pid"
    stop_pid "$rvs_pid"
    if [ -n "$hp_orig" ]; then
        echo "$hp_orig" > "$hp_file" 2>/dev/null || true
    fi
    # EAL runtime directories of this run (testpmd's are never removed by testpmd).
    eal_cleanup "$prefix" "$prefix-tp"
    # The twin went with rvs; its namespace goes now (never a name this run did not make).
    if [ -n "$netns" ] && [ "$netns" = "rvsbench-$$" ] && [ -e "/run/netns/$netns" ]; then
        ip netns del "$netns" 2>/dev/null || true
    fi
    if [ $keep -eq 1 ] || [ $rc -ne 0 ]; then
        echo "$PROG: scratch directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. traffic -------------------------------------------------------------------------------
echo "== generating $scenario traffic: $conns flows, $workers queue(s) per port"
gen=("$BIN/rvs-pcapgen" --scenario "$scenario" --conns "$conns"
     --queues "$workers" --steer "$steer" --size "$size" --reals "$reals" --acks "$acks"
     --rounds "$rounds")
[ $imix -eq 1 ] && gen+=(--imix)
"${gen[@]}" --out "$work/pcap" >/dev/null
if [ "$kflood" -gt 0 ]; then
    # The same traffic (same seed: the same files but for the private ones), with one host-bound
    # datagram after every $kflood replies in each private file.
    echo "== generating the flooded private side: one host-bound datagram after every $kflood replies"
    "${gen[@]}" --out "$work/pcap-flood" --kernel-flood-every "$kflood" >/dev/null
fi

# ---- 2. configuration -------------------------------------------------------------------------
# Sizes from the manifest: every replayed packet lives in an mbuf for the whole run.
manifest="$work/pcap/manifest.json"
kmanifest="$work/pcap-flood/manifest.json"
# Every run of --kernel-flood has the same memory: that of the larger (flooded) replay.
sizes=$(benchlib mempool-size "$([ "$kflood" -gt 0 ] && echo "$kmanifest" || echo "$manifest")" --workers "$workers")
read -r _ mbufs memory_mb <<< "$sizes"   # packets, mbufs, MiB
pub_args=$(benchlib devargs "$manifest" public)
priv_args=$(benchlib devargs "$manifest" private)
[ "$kflood" -gt 0 ] && priv_args_flood=$(benchlib devargs "$kmanifest" private)
gw_mac=$(benchlib gateway-mac "$manifest")

if [ "$scenario" = syn ]; then
    # No replies: the private port receives nothing (a net_pcap replaying nothing would leak
    # mbufs with infinite_rx, so a null device with RX disabled instead).
    priv_dev=net_null1
    priv_args="no-rx=1"
else
    priv_dev=net_pcap1
fi

no_huge=false
hp_size_kb=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)
hp_free_mb=$(( $(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo) * hp_size_kb / 1024 ))
if [ "$huge" = no ]; then
    no_huge=true
elif [ "$hp_free_mb" -lt "$memory_mb" ]; then
    want=$(( (memory_mb - hp_free_mb) * 1024 / hp_size_kb + 8 ))
    hp_orig=$(cat "$hp_file")
    echo $((hp_orig + want)) > "$hp_file" 2>/dev/null || true
    hp_free_mb=$(( $(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo) * hp_size_kb / 1024 ))
    if [ "$hp_free_mb" -lt "$memory_mb" ]; then
        [ "$huge" = yes ] && fail "hugepages: $hp_free_mb MiB free, $memory_mb MiB needed"
        warn "only $hp_free_mb MiB of hugepages for $memory_mb MiB: running with" \
             "no_huge (4 KiB pages: slower, recorded in the results)"
        echo "$hp_orig" > "$hp_file" 2>/dev/null || true
        hp_orig=""
        no_huge=true
    else
        echo "== raised nr_hugepages from $hp_orig to $(cat "$hp_file") (restored at exit)"
    fi
fi

# Connection table per worker: every flow (all of them on one worker with --steer spray is not
# possible, but owner hashing is uneven) with margin.
connections=$(( conns * 5 / 4 / workers + 4096 ))

rules="$work/pcap/rules"   # the services the traffic expects, written by rvs-pcapgen
neigh=$(benchlib neigh "$manifest")

# The exception path (--kernel-flood): a kernel twin on the private port, the same in the idle
# and the flooded runs. rvs runs in a network namespace of this run's own: the twin gets the
# private port's address (192.168.8.13/24), and in the root namespace that subnet may already
# be another twin's (the lab's rvs-priv-k): two connected routes to it would send the host's
# traffic for the real servers to whichever came first.
kname=""
netns=""
rvs_pre=()
kset=()
if [ "$kflood" -gt 0 ]; then
    kname="rvsbk$$"
    kname=${kname:0:15}
    netns="rvsbench-$$"
    kset=(--set "private.kernel_interface=$kname" --set "private.kernel_backend=$kbackend"
          --set "private.kernel_rate=$krate")
fi

write_cfg() { # out private-devargs
    benchlib write-config "${kset[@]}" "$ROOT/dpdk-config/bench.toml" "$1" \
        CPUS="${cpus//,/, }" MEMORY_MB="$memory_mb" NO_HUGE="$no_huge" FILE_PREFIX="$prefix" \
        PUBLIC_DEVARGS="$pub_args" GATEWAY_MAC="$gw_mac" PRIVATE_DEVICE="$priv_dev" \
        PRIVATE_DEVARGS="$2" PRIVATE_NEIGHBOURS="$neigh" WORKERS="$workers" \
        CONNECTIONS="$connections" MBUFS="$mbufs" SOCKET="$sock" RULES="$rules"
}
cfg="$work/rvs.toml"
write_cfg "$cfg" "$priv_args"
mport=19642
if [ "$scrape" -gt 0 ]; then
    # The endpoint, and services for each scrape to list (after the traffic's own: the first
    # line of the rules stays the traffic's VIP).
    printf '\n[metrics]\nlisten = "127.0.0.1:%s"\n' "$mport" >> "$cfg"
    benchlib extra-services "$scrape_services" 10 >> "$rules"
fi
if [ "$kflood" -gt 0 ]; then
    cfg_flood="$work/rvs-flood.toml"
    write_cfg "$cfg_flood" "$priv_args_flood"
    # The one difference between the two: the private port's pcap files.
    kdiff=$(diff "$cfg" "$cfg_flood" || true)
    if [ "$(grep -c '^[<>]' <<< "$kdiff")" -ne 2 ] ||
       ! grep -q '^> devargs = ".*pcap-flood/private-q0.pcap' <<< "$kdiff"; then
        fail "the idle and flooded configurations differ in more than the private pcap"
    fi
    ip netns add "$netns" || die "cannot create the network namespace $netns"
    ip -n "$netns" link set lo up
    # No IPv6 in it: the twin's router solicitations and MLD reports would be traffic of their own.
    ip netns exec "$netns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
    rvs_pre=(ip netns exec "$netns")
fi
"${rvs_pre[@]}" "$BIN/rvs" --config "$cfg" --check >/dev/null

# On-CPU nanoseconds of a process's DPDK worker threads (rte-worker-N), summed: on a shared
# machine the workers do not own their cores, and this says how much of the wall time they ran.
worker_ns() {
    local pid=$1 t sum=0 c
    for t in /proc/"$pid"/task/*; do
        c=$(cat "$t/comm" 2>/dev/null || true)
        case "$c" in rte-worker-*) sum=$((sum + $(awk '{print $1}' "$t/schedstat"))) ;; esac
    done
    echo "$sum"
}

# Other DPDK pollers on this machine compete for the same cores (the lab's rvs, say).
others=$(pgrep -x rvs -d, || true)
others="$others${others:+,}$(pgrep -f dpdk-testpmd -d, || true)"
others=${others%,}
[ -n "$others" ] && warn "other DPDK processes are running (pids $others): their pollers share the cores, numbers will be low"

# ---- 3. rvs -----------------------------------------------------------------------------------
rvs_log="$work/rvs.log"
start_rvs() { # config log: rvs in the background (rvs_pid), until it answers on $sock, with the
              # services configured (rules_by says how)
    local _
    rvs_log=$2
    rm -f "$sock"
    RVS_LOG=${RVS_LOG:-warn} "${rvs_pre[@]}" "$BIN/rvs" --config "$1" > "$rvs_log" 2>&1 &
    rvs_pid=$!
    for _ in $(seq 1 1200); do
        adm -L -n >/dev/null 2>&1 && break
        kill -0 "$rvs_pid" 2>/dev/null || { cat "$rvs_log" >&2; rvs_pid=""; fail "rvs exited at start"; }
        sleep 0.1
    done
    adm -L -n >/dev/null 2>&1 || fail "rvs did not answer on $sock within 120 s"

    vip_key=$(head -1 "$rules" | awk '{print $3}')
    rules_by="rules file at start"
    if ! adm -L -n | grep -q -- "$vip_key"; then
        # The [rules] file was not applied at start (an rvs without it): restore the same rules.
        adm -R < "$rules" || fail "cannot configure the services"
        rules_by="rvsadm -R after start"
    fi
}

snap() { # name: the port counters with the time they were read, then the service counters
    local t0 t1
    t0=$(date +%s.%N)
    adm --stats-ports --json > "$work/$1-ports.json"
    t1=$(date +%s.%N)
    local cpu_ns
    cpu_ns=$(worker_ns "$rvs_pid")
    local l0 l1
    l0=$(date +%s.%N)
    adm -L -n --json > "$work/$1-list.json"
    l1=$(date +%s.%N)
    # "t": when the port counters were read; "tl": when the service counters were (a separate
    # request, tens of ms later under load: rates from each are taken over their own window).
    benchlib snap-time "$t0" "$t1" "$l0" "$l1" "$cpu_ns" > "$work/$1-time.json"
    if [ -n "$kname" ]; then
        # The twin's own counters (its RX: what rvs wrote into it), from the kernel's side, and
        # when they were read (rates from them are taken over their own window).
        local w0 w1
        w0=$(date +%s.%N)
        ip -n "$netns" -s -j link show dev "$kname" > "$work/$1-twin.json" 2>/dev/null ||
            echo '[]' > "$work/$1-twin.json"
        w1=$(date +%s.%N)
        echo "$w0 $w1" > "$work/$1-twin-time.txt"
        # Where the CPUs' time went (per CPU: user, system, softirq, steal, ...), and the
        # workers' run and run-queue wait times: a worker that ran less was either waiting
        # for its CPU (another task had it) or its vCPU was not running (steal).
        grep '^cpu[0-9]' /proc/stat > "$work/$1-cpustat.txt"
        local t
        for t in /proc/"$rvs_pid"/task/*; do
            case "$(cat "$t/comm" 2>/dev/null)" in rte-worker-*) cat "$t/schedstat" ;; esac
        done > "$work/$1-sched.txt"
        # How much of rvs's anonymous memory (the connection table asks for it) is in
        # transparent huge pages: whether it got them depends on the host's fragmentation.
        awk '/^AnonHugePages:/ {print $2}' "/proc/$rvs_pid/smaps_rollup" > "$work/$1-thp.txt" 2>/dev/null || true
    fi
}

conns_now() { adm -L -n --json | benchlib table-conns; }

warm_up() {
    local _ n
    sleep "$warmup"
    if [ "$scenario" != syn ]; then
        # Steady state means every flow has its connection: replies can then all hit.
        for _ in $(seq 1 600); do
            n=$(conns_now)
            [ "$n" -ge "$conns" ] && break
            kill -0 "$rvs_pid" 2>/dev/null || fail "rvs died during warm-up (see $rvs_log)"
            sleep 0.1
        done
        n=$(conns_now)
        [ "$n" -ge "$conns" ] || fail "after warm-up only $n of $conns connections exist: the traffic does not create them (wrong MACs, VIP, rules?)"
    fi
}

if [ "$kflood" -gt 0 ]; then
    # ---- the exception path idle vs. flooded: one rvs per run, alternating ------------------
    [ $perf -eq 1 ] && { command -v perf >/dev/null || fail "--perf: perf not found (apt-get install linux-perf)"; }
    # idle1 flood1 idle2 flood2 ... floodK idleK+1: every flooded run between two idle ones, so
    # that a drift of the machine (other tenants, the host's caches) shows on both sides of it.
    kplan=()
    for k in $(seq 1 "$kpairs"); do kplan+=("idle$k" "flood$k"); done
    kplan+=("idle$((kpairs + 1))")
    kruns=()
    for run in "${kplan[@]}"; do
        kind=${run%%[0-9]*}
        c=$cfg
        [ "$kind" = flood ] && c=$cfg_flood
        echo "== run $run: rvs with the kernel twin $kname ($kbackend, kernel_rate $krate/s) in netns $netns, $([ "$kind" = flood ] && echo "private pcap flooded (1 in $((kflood + 1)) host-bound)" || echo "private pcap plain")"
        start_rvs "$c" "$work/rvs-$run.log"
        warm_up
        ip -n "$netns" -br addr show dev "$kname" > "$work/$run-twin-up.txt" 2>&1 ||
            fail "run $run: the kernel twin $kname does not exist in $netns (see $rvs_log)"
        snap "$run-before"
        perf_pids=()
        if [ $perf -eq 1 ]; then
            # The workers' own profile, and everything that ran on the workers' CPUs.
            perf record -e cpu-clock -F 2999 -g -t "$(rte_worker_tids "$rvs_pid" | paste -sd,)" \
                -o "$work/perf-$run.data" -- sleep "$duration" >/dev/null 2>&1 &
            perf_pids+=($!)
            perf record -e cpu-clock -F 999 -a -C "${cpus#*,}" \
                -o "$work/perf-cpu-$run.data" -- sleep "$duration" >/dev/null 2>&1 &
            perf_pids+=($!)
        fi
        sleep "$duration"
        snap "$run-after"
        for p in "${perf_pids[@]}"; do wait "$p" 2>/dev/null || true; done
        kill -0 "$rvs_pid" 2>/dev/null || fail "rvs died during run $run (see $rvs_log)"
        stop_pid "$rvs_pid"
        rvs_pid=""
        # The twin is rvs's: it must be gone with it (net_tap's goes when its fd closes).
        gone=""
        for _ in $(seq 1 50); do
            ip -n "$netns" link show dev "$kname" >/dev/null 2>&1 || { gone=1; break; }
            sleep 0.1
        done
        [ -n "$gone" ] || fail "run $run: the kernel twin $kname outlived rvs in $netns"
        [ -e "/sys/class/net/$kname" ] && fail "run $run: an interface $kname exists in the root namespace"
        echo "removed" > "$work/$run-twin-gone.txt"
        eal_cleanup "$prefix"
        if [ -f "$work/perf-$run.data" ]; then
            perf report -i "$work/perf-$run.data" --stdio --no-children --percent-limit 0.5 -g none \
                --sort symbol 2>/dev/null | grep -v '^#' | grep -v '^$' > "$work/perf-report-$run.txt" || true
        fi
        if [ -f "$work/perf-cpu-$run.data" ]; then
            perf report -i "$work/perf-cpu-$run.data" --stdio --no-children --percent-limit 0.5 -g none \
                --sort comm,dso 2>/dev/null | grep -v '^#' | grep -v '^$' > "$work/perf-cpu-report-$run.txt" || true
        fi
        kruns+=("$run")
    done
    mkdir -p "$results"
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    frame=$([ $imix -eq 1 ] && echo imix || echo "$size")
    out="$results/kflood-$scenario-$conns-w$workers-$frame-$stamp.json"
    benchlib kflood-report --work "$work" --out "$out" --runs "${kruns[*]}" --manifest "$kmanifest" \
        --scenario "$scenario" --conns "$conns" --workers "$workers" --duration "$duration" \
        --warmup "$warmup" --frame "$frame" --steer "$steer" --reals "$reals" --acks "$acks" \
        --rounds "$rounds" --smoke "$smoke" --no-huge "$no_huge" --cpus "$cpus" \
        --rules-by "$rules_by" --others "$others" --command "$cmdline" \
        --kernel-flood "$kflood" --kernel-rate "$krate" --kernel-interface "$kname" \
        --kernel-backend "$kbackend" --netns "$netns"
    exit $?
fi

echo "== rvs: $workers worker(s) on CPUs $cpus, ${memory_mb} MiB $([ $no_huge = true ] && echo "no_huge" || echo "hugepages"), $mbufs mbufs"
start_rvs "$cfg" "$work/rvs.log"
warm_up

worker_tids=""
if [ $perf -eq 1 ]; then
    command -v perf >/dev/null || fail "--perf: perf not found (apt-get install linux-perf)"
    worker_tids=$(rte_worker_tids "$rvs_pid" | paste -sd,)
fi
snap before
perf_pids=()
if [ -n "$worker_tids" ]; then
    # Counters where the (virtual) CPU exposes them, and a cpu-clock profile of the workers.
    perf stat -e task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions,cache-misses \
        -t "$worker_tids" -o "$work/perf-stat.txt" -- sleep "$duration" >/dev/null 2>&1 &
    perf_pids+=($!)
    perf record -e cpu-clock -F 2999 -g -t "$worker_tids" -o "$work/perf.data" \
        -- sleep "$duration" >/dev/null 2>&1 &
    perf_pids+=($!)
fi
sleep "$duration"
snap after
for p in "${perf_pids[@]}"; do wait "$p" 2>/dev/null || true; done
if [ -f "$work/perf.data" ]; then
    perf report -i "$work/perf.data" --stdio --no-children --percent-limit 0.5 -g none \
        --sort symbol 2>/dev/null | grep -v '^#' | grep -v '^$' > "$work/perf-report.txt" || true
fi
kill -0 "$rvs_pid" 2>/dev/null || fail "rvs died during the measurement (see $work/rvs.log)"
if [ "$edits" -gt 0 ]; then
    # Reconfiguration under load: the same traffic, a second window of the same length, while
    # the control plane applies $edits edits per second, then a third window without edits
    # (the without-edits rate is the mean of the first and third). The client starts first and
    # runs 2 s longer than the window, so the whole window is under edits. It runs on the
    # management CPU (the first of --cpus), as a control client would, not on a worker's.
    dest_args=()
    while read -r d; do dest_args+=(--dest "$d"); done < <(benchlib dests "$manifest")
    [ ${#dest_args[@]} -gt 0 ] || fail "no services in $manifest"
    echo "== reconfiguration under load: $edits edits/s for ${duration}s"
    pin=()
    command -v taskset >/dev/null && pin=(taskset -c "${cpus%%,*}")
    "${pin[@]}" "$PY" "$ROOT/tests/tools/ctl_edits.py" --socket "$sock" "${dest_args[@]}" --rate "$edits" \
        --duration $((duration + 2)) --ready-file "$work/edits-ready" --out "$work/edits.json" \
        > "$work/edits.log" 2>&1 &
    ed_pid=$!
    for _ in $(seq 1 100); do
        [ -e "$work/edits-ready" ] && break
        kill -0 "$ed_pid" 2>/dev/null || break
        sleep 0.05
    done
    if [ ! -e "$work/edits-ready" ]; then
        cat "$work/edits.log" >&2
        fail "the edit client did not get its first edit acknowledged"
    fi
    snap ebefore
    sleep "$duration"
    snap eafter
    ed_rc=0
    wait "$ed_pid" || ed_rc=$?
    ed_pid=""
    echo "$ed_rc" > "$work/edits-rc"
    if [ ! -s "$work/edits.json" ]; then
        cat "$work/edits.log" >&2
        fail "the edit client wrote no summary (exit $ed_rc)"
    fi
    kill -0 "$rvs_pid" 2>/dev/null || fail "rvs died during the edits (see $work/rvs.log)"
    echo "== the same window again without edits"
    snap pbefore
    sleep "$duration"
    snap pafter
fi
if [ "$scrape" -gt 0 ]; then
    # Scraping under load: the same traffic, a second window while Prometheus scrapes every
    # $scrape s, then a third without (the without rate is the mean of the first and third).
    # Prometheus runs on the management CPU, as rvs's endpoint thread does.
    echo "== Prometheus scraping every ${scrape}s for ${duration}s ($scrape_services extra services)"
    pdir="$work/prometheus"
    mkdir -p "$pdir"
    printf 'global:\n  scrape_interval: %ss\n  scrape_timeout: %ss\nscrape_configs:\n  - job_name: rvs\n    static_configs:\n      - targets: ["127.0.0.1:%s"]\n' \
        "$scrape" "$scrape" "$mport" > "$pdir/prometheus.yml"
    purl="http://127.0.0.1:19090"
    pin=()
    command -v taskset >/dev/null && pin=(taskset -c "${cpus%%,*}")
    "${pin[@]}" prometheus --config.file="$pdir/prometheus.yml" --storage.tsdb.path="$pdir/data" \
        --web.listen-address=127.0.0.1:19090 > "$pdir/prometheus.log" 2>&1 &
    prom_pid=$!
    for _ in $(seq 1 600); do
        [ "$(benchlib prom-query "$purl" 'up{job="rvs"}' 2>/dev/null)" = 1.0 ] && break
        kill -0 "$prom_pid" 2>/dev/null || { cat "$pdir/prometheus.log" >&2; fail "prometheus exited"; }
        sleep 0.1
    done
    [ "$(benchlib prom-query "$purl" 'up{job="rvs"}' 2>/dev/null)" = 1.0 ] ||
        { stop_pid "$prom_pid"; fail "prometheus did not scrape rvs within 60 s (see $pdir)"; }
    snap sbefore
    sleep "$duration"
    snap safter
    # What Prometheus saw in the window (the range ends now, just after it).
    q() { benchlib prom-query "$purl" "$1"; }
    r="[${duration}s]"
    cat > "$work/scrape.json" <<JSON
{"scrapes": $(q "count_over_time(up{job=\"rvs\"}$r)"),
 "up_min": $(q "min_over_time(up{job=\"rvs\"}$r)"),
 "duration_avg_s": $(q "avg_over_time(scrape_duration_seconds{job=\"rvs\"}$r)"),
 "duration_max_s": $(q "max_over_time(scrape_duration_seconds{job=\"rvs\"}$r)"),
 "samples": $(q "scrape_samples_scraped{job=\"rvs\"}"),
 "gather_max_s": $(q "max_over_time(rvs_metrics_gather_seconds$r)"),
 "services": $(q "rvs_services")}
JSON
    stop_pid "$prom_pid"
    kill -0 "$rvs_pid" 2>/dev/null || fail "rvs died while scraped (see $work/rvs.log)"
    echo "== the same window again without scraping"
    snap pbefore
    sleep "$duration"
    snap pafter
fi
stop_pid "$rvs_pid"
rvs_pid=""

# ---- 4. testpmd -------------------------------------------------------------------------------
# Statistics periods testpmd has printed whole (port 1's block ends each one).
periods_of() { grep -c "NIC statistics for port 1" "$work/testpmd-$1.log" 2>/dev/null || true; }
wait_periods() { # mode n limit_s: until n periods exist; 1 if testpmd exits or limit_s passes
    local _
    for _ in $(seq 1 $(($3 * 10))); do
        [ "$(periods_of "$1")" -ge "$2" ] && return 0
        kill -0 "$tp_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
tp_modes=()
if [ $testpmd -eq 1 ]; then
    # The same lcore -> CPU map as rvs (docs/config.md): lcore 0 on the first CPU, worker w
    # (lcore w+1) on cpus[1 + w % (n-1)], so both may share CPUs the same way.
    IFS=, read -r -a cl <<< "$cpus"
    lcores="0@${cl[0]}"
    for w in $(seq 0 $((workers - 1))); do
        lcores="$lcores,$((w + 1))@${cl[$((1 + w % (${#cl[@]} - 1)))]}"
    done
    tp_eal=(--lcores "$lcores" --file-prefix "$prefix-tp" --log-level error -m "$memory_mb" --no-pci
            --vdev "net_pcap0,$pub_args")
    if [ "$priv_dev" = net_pcap1 ]; then
        tp_eal+=(--vdev "net_pcap1,$priv_args")
    else
        tp_eal+=(--vdev "net_null1,$priv_args")
    fi
    if [ $no_huge = true ]; then tp_eal+=(--no-huge --no-shconf); else tp_eal+=(--in-memory); fi
    for mode in io 5tswap; do
        echo "== dpdk-testpmd --forward-mode=$mode"
        "$TESTPMD" "${tp_eal[@]}" -- --port-topology=paired --nb-cores="$workers" \
            --rxq="$workers" --txq="$workers" --forward-mode="$mode" \
            --total-num-mbufs="$mbufs" --stats-period 1 < /dev/null > "$work/testpmd-$mode.log" 2>&1 &
        tp_pid=$!
        # The measurement is counted in testpmd's own statistics periods, not in wall time:
        # with large pcaps testpmd spends many seconds loading them before forwarding, and on
        # a busy machine its main lcore prints fewer periods than seconds pass. The report
        # skips warmup + 1 periods and averages the next `duration`; wait until they exist.
        wait_periods "$mode" 1 300 || fail "testpmd ($mode) printed no statistics in 300 s"
        wait_periods "$mode" $((warmup + 2)) $((60 + 10 * (warmup + 2))) ||
            fail "testpmd ($mode): fewer than $((warmup + 2)) statistics periods"
        a_t=$(date +%s.%N); a_ns=$(worker_ns "$tp_pid")
        wait_periods "$mode" $((warmup + 1 + duration)) $((60 + 10 * duration)) ||
            fail "testpmd ($mode): fewer than $((warmup + 1 + duration)) statistics periods"
        b_t=$(date +%s.%N); b_ns=$(worker_ns "$tp_pid")
        benchlib cpu-share "$a_ns" "$b_ns" "$a_t" "$b_t" "$workers" > "$work/testpmd-$mode-cpu.json"
        kill -0 "$tp_pid" 2>/dev/null || { tail -20 "$work/testpmd-$mode.log" >&2; tp_pid=""; fail "testpmd ($mode) exited early"; }
        stop_pid "$tp_pid"
        tp_pid=""
        tp_modes+=("$mode")
    done
fi

# ---- 5. results -------------------------------------------------------------------------------
mkdir -p "$results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
frame=$([ $imix -eq 1 ] && echo imix || echo "$size")
out="$results/$scenario-$conns-w$workers-$frame-$stamp.json"
benchlib report --work "$work" --out "$out" --scenario "$scenario" --conns "$conns" \
    --workers "$workers" --duration "$duration" --warmup "$warmup" --frame "$frame" \
    --steer "$steer" --reals "$reals" --acks "$acks" --rounds "$rounds" --smoke "$smoke" \
    --no-huge "$no_huge" --cpus "$cpus" --rules-by "$rules_by" --others "$others" \
    --command "$cmdline" --edits "$edits" --scrape "$scrape" --testpmd-modes "${tp_modes[*]}"
