#!/usr/bin/env bash
# The seeds' LVS-NAT lab on one machine, built from network namespaces and veth pairs, with
# rvs running on the root-namespace ends:
#
#   rvs-client 10.0.0.12/24 --- rvs-pub [rvs: VIP 10.0.0.13 | DIP 192.168.8.13] rvs-priv --- rvs-sw (bridge)
#                                                                       rvs-rs1 192.168.8.14 ---+
#                                                                       rvs-rs2 192.168.8.15 ---+
#   kernel twins: rvs-pub-k (10.0.0.13/24) and rvs-priv-k (192.168.8.13/24) in the root namespace,
#   the host's own stack on the appliance's ports (docs/operations.md, "The host's stack").
#   real servers: default route via 192.168.8.13, HTTP on :80 answering "hello RS1" / "hello RS2"
#   (RS2 also on :8000 and :21), UDP :53 answering "hello RSn <payload>" (scripts/lab-server.py).
#
# Usage: scripts/lab.sh up [--workers N] [--driver af_packet|af_xdp] [--rules FILE] [--no-rvs]
#        scripts/lab.sh down | status | start-rvs [...] | stop-rvs
#        scripts/lab.sh stop-server N | start-server N   (real server N = 1 or 2: its HTTP and
#                                                         UDP servers, for health-check tests)
# Files: /run/rvs/lab.toml (the config rvs runs with), /run/rvs/rvs.log, /run/rvs/rvs.pid.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN=/run/rvs
CONF=$RUN/lab.toml
LOG=$RUN/rvs.log
PID=$RUN/rvs.pid
RVS_BIN=${RVS_BIN:-$ROOT/target/release/rvs}
RVSADM_BIN=${RVSADM_BIN:-$ROOT/target/release/rvsadm}
NS_CLIENT=rvs-client
NS_SW=rvs-sw
NS_RS=(rvs-rs1 rvs-rs2)
RS_IP=(192.168.8.14 192.168.8.15)
RS_NAME=(RS1 RS2)
QUEUES=4
# Debian's interpreter: starts fast and does not depend on the caller's PATH.
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

workers=1
driver=af_packet
start_rvs=1
rules=""

die() { echo "lab.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"

parse_opts() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --workers) workers=${2:?}; shift 2 ;;
            --driver) driver=${2:?}; shift 2 ;;
            --no-rvs) start_rvs=0; shift ;;
            --rules) rules=${2:?}; shift 2 ;;
            *) die "unknown option $1" ;;
        esac
    done
    [[ "$workers" =~ ^[1-9][0-9]?$ ]] || die "--workers must be 1..99"
    case "$driver" in af_packet|af_xdp) ;; *) die "--driver must be af_packet or af_xdp" ;; esac
}

quiet_link() { # ifname [netns]: no offloads (the appliance sees real frames and checksums), no IPv6 chatter
    local ifc=$1 ns=${2:-}
    local ex=()
    [ -n "$ns" ] && ex=(ip netns exec "$ns")
    "${ex[@]}" ethtool -K "$ifc" rx off tx off tso off gso off gro off lro off >/dev/null 2>&1 || true
    "${ex[@]}" sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" >/dev/null 2>&1 || true
}

veth() { # a b: veth pair with QUEUES queues (af_xdp binds one per worker)
    ip link add "$1" numtxqueues $QUEUES numrxqueues $QUEUES type veth peer name "$2" \
        numtxqueues $QUEUES numrxqueues $QUEUES
}

topology_up() {
    for ns in $NS_CLIENT $NS_SW "${NS_RS[@]}"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    # Client side: rvs-pub (root, appliance) <-> eth0 (client).
    veth rvs-pub rvs-pub-c
    ip link set rvs-pub-c netns $NS_CLIENT
    ip -n $NS_CLIENT link set rvs-pub-c name eth0
    ip -n $NS_CLIENT addr add 10.0.0.12/24 dev eth0
    ip -n $NS_CLIENT link set eth0 up
    quiet_link eth0 $NS_CLIENT
    # Private side: a bridge in rvs-sw joins the appliance and the real servers.
    ip -n $NS_SW link add br0 type bridge
    ip netns exec $NS_SW sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n $NS_SW link set br0 up
    veth rvs-priv rvs-priv-s
    ip link set rvs-priv-s netns $NS_SW
    ip -n $NS_SW link set rvs-priv-s master br0 up
    quiet_link rvs-priv-s $NS_SW
    for i in 0 1; do
        local ns=${NS_RS[$i]}
        veth "rvs-rs$((i+1))-s" "rvs-rs$((i+1))-h"
        ip link set "rvs-rs$((i+1))-s" netns $NS_SW
        ip -n $NS_SW link set "rvs-rs$((i+1))-s" master br0 up
        quiet_link "rvs-rs$((i+1))-s" $NS_SW
        ip link set "rvs-rs$((i+1))-h" netns "$ns"
        ip -n "$ns" link set "rvs-rs$((i+1))-h" name eth0
        ip -n "$ns" addr add "${RS_IP[$i]}/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route add default via 192.168.8.13
        quiet_link eth0 "$ns"
    done
    for ifc in rvs-pub rvs-priv; do
        sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" || true
        quiet_link $ifc
        # af_packet leaves these links to the kernel too: once the kernel twins hold the VIP
        # and the DIP, it would answer what arrives here as well (a RST for every balanced
        # SYN). Strict reverse-path filtering (the twins have the routes) and no ARP keep the
        # kernel off them; the twins are the host's way in (docs/operations.md).
        sysctl -qw "net.ipv4.conf.$ifc.rp_filter=1"
        ip link set $ifc arp off
        ip link set $ifc up
    done
}

server_start() { # i (0 or 1): starts real server i+1's servers and waits for its HTTP
    # RS1: HTTP :80, UDP :53. RS2: HTTP :80, :8000 and :21 (the seeds' port-mapping example),
    # UDP :53. Both answer "hello RSn".
    local i=$1
    local ports=("--tcp 80 --udp 53" "--tcp 80 --tcp 8000 --tcp 21 --udp 53")
    local ns=${NS_RS[$i]} dir=$RUN/www-rs$((i+1))
    mkdir -p "$dir"
    echo "hello ${RS_NAME[$i]}" > "$dir/index.html"
    # shellcheck disable=SC2086
    ip netns exec "$ns" setsid "$PY" "$ROOT/scripts/lab-server.py" --bind "${RS_IP[$i]}" \
        --name "${RS_NAME[$i]}" --dir "$dir" ${ports[$i]} \
        >"$RUN/http-rs$((i+1)).log" 2>&1 < /dev/null &
    echo $! > "$RUN/http-rs$((i+1)).pid"
}

server_wait() { # i: waits until real server i+1 answers HTTP
    local i=$1
    for _ in $(seq 100); do
        ip netns exec "${NS_RS[$i]}" curl -s -m 1 "http://${RS_IP[$i]}/" >/dev/null 2>&1 && break
        sleep 0.1
    done
    ip netns exec "${NS_RS[$i]}" curl -s -m 1 "http://${RS_IP[$i]}/" | grep -q "hello ${RS_NAME[$i]}" \
        || die "HTTP server on ${NS_RS[$i]} did not come up ($(cat "$RUN/http-rs$((i+1)).log"))"
}

server_stop() { # i: stops real server i+1's servers (the namespace and its address stay)
    local i=$1 p
    local f=$RUN/http-rs$((i+1)).pid
    if [ -f "$f" ]; then
        p=$(cat "$f")
        kill "$p" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        rm -f "$f"
    fi
}

servers_up() {
    for i in 0 1; do server_start $i; done
    for i in 0 1; do server_wait $i; done
}

write_config() {
    local pub priv
    if [ "$driver" = af_xdp ]; then
        pub="device = \"net_af_xdp0\"\ndevargs = \"iface=rvs-pub,start_queue=0,queue_count=$workers\""
        priv="device = \"net_af_xdp1\"\ndevargs = \"iface=rvs-priv,start_queue=0,queue_count=$workers\""
    else
        local big="framesz=16384,blocksz=16384,framecnt=512"
        pub="device = \"net_af_packet0\"\ndevargs = \"iface=rvs-pub,qpairs=$workers,$big\""
        priv="device = \"net_af_packet1\"\ndevargs = \"iface=rvs-priv,qpairs=$workers,$big\""
    fi
    python3 - "$ROOT/dpdk-config/lab.toml" "$CONF" "$workers" "$pub" "$priv" "$driver" <<'PY'
import re, sys
src, dst, workers, pub, priv, driver = sys.argv[1:]
t = open(src).read()
def sect(t, name, body):
    # Replace the device/devargs lines of one section.
    m = re.search(r'(\[%s\]\n)(device = .*\n)(devargs = .*\n)' % name, t)
    return t[:m.start(2)] + body.replace('\\n', '\n') + '\n' + t[m.end(3):]
t = sect(t, 'public', pub)
t = sect(t, 'private', priv)
t = re.sub(r'(\[workers\]\ncount = )\d+', r'\g<1>' + workers, t)
if driver == 'af_xdp':
    # AF_XDP umem frames are at most a page: standard mbufs (it does not reassemble fragments).
    t = re.sub(r'(?m)^mbuf_size = \d+', 'mbuf_size = 2176', t)
open(dst, 'w').write(t)
PY
    if [ -n "$rules" ]; then
        printf '\n[rules]\nfile = "%s"\n' "$(readlink -f "$rules")" >> "$CONF"
    fi
}

set_queues() { # n: active veth queues on both appliance links (AF_XDP binds queues 0..n-1;
               # a frame the peer sends on another queue would never reach it)
    local n=$1
    ethtool -L rvs-pub rx "$n" tx "$n" >/dev/null
    ip netns exec $NS_CLIENT ethtool -L eth0 rx "$n" tx "$n" >/dev/null
    ethtool -L rvs-priv rx "$n" tx "$n" >/dev/null
    ip netns exec $NS_SW ethtool -L rvs-priv-s rx "$n" tx "$n" >/dev/null
}

rvs_start() {
    [ -x "$RVS_BIN" ] || die "$RVS_BIN not built (cargo build --release)"
    if [ "$driver" = af_xdp ]; then
        # net_af_xdp sizes itself from the device's combined channels, which veth does not
        # report: one queue, so one worker.
        [ "$workers" -eq 1 ] || die "af_xdp on the lab's veth links supports one worker (use af_packet for more)"
        set_queues 1
    else
        set_queues $QUEUES
    fi
    write_config
    if [ -f $PID ] && kill -0 "$(cat $PID)" 2>/dev/null; then die "rvs already running (pid $(cat $PID))"; fi
    setsid "$RVS_BIN" --config "$CONF" >"$LOG" 2>&1 < /dev/null &
    echo $! > $PID
    for _ in $(seq 150); do
        if ! kill -0 "$(cat $PID)" 2>/dev/null; then
            cat "$LOG" >&2
            die "rvs exited during start (log above, $LOG)"
        fi
        if "$RVSADM_BIN" --stats-ports >/dev/null 2>&1; then
            # The kernel twins (rvs-pub-k, rvs-priv-k): no IPv6 chatter out of the lab's ports.
            for ifc in rvs-pub-k rvs-priv-k; do
                sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" 2>/dev/null || true
            done
            echo "lab.sh: rvs ready (pid $(cat $PID), $workers worker(s), $driver)"
            return 0
        fi
        sleep 0.2
    done
    cat "$LOG" >&2
    die "rvs did not become ready in 30 s"
}

rvs_stop() {
    if [ -f $PID ]; then
        local p
        p=$(cat $PID)
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p"
            for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$p" 2>/dev/null && kill -KILL "$p"
        fi
        rm -f $PID
    fi
}

down() {
    rvs_stop
    for i in 0 1; do server_stop $i; done
    for ns in $NS_CLIENT $NS_SW "${NS_RS[@]}"; do
        if ip netns list | grep -qw "$ns"; then
            ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
            ip netns del "$ns"
        fi
    done
    for ifc in rvs-pub rvs-priv; do ip link del "$ifc" 2>/dev/null || true; done
}

status() {
    for ns in $NS_CLIENT $NS_SW "${NS_RS[@]}"; do
        ip netns list | grep -qw "$ns" && echo "netns $ns: up" || echo "netns $ns: absent"
    done
    if [ -f $PID ] && kill -0 "$(cat $PID)" 2>/dev/null; then
        echo "rvs: running (pid $(cat $PID))"
        "$RVSADM_BIN" --stats-ports || true
    else
        echo "rvs: not running"
    fi
}

mkdir -p $RUN
cmd=${1:-}
shift || true
case "$cmd" in
    up)
        parse_opts "$@"
        down
        topology_up
        servers_up
        [ $start_rvs -eq 1 ] && rvs_start
        echo "lab.sh: lab up"
        ;;
    down) down; echo "lab.sh: lab down" ;;
    status) status ;;
    start-rvs) parse_opts "$@"; rvs_start ;;
    stop-rvs) rvs_stop ;;
    stop-server|start-server)
        case "${1:-}" in 1|2) ;; *) die "usage: $0 $cmd 1|2" ;; esac
        server_stop $(($1 - 1))
        if [ "$cmd" = start-server ]; then server_start $(($1 - 1)); server_wait $(($1 - 1)); fi
        ;;
    *) echo "usage: $0 up [--workers N] [--driver af_packet|af_xdp] [--rules FILE] [--no-rvs] | down | status | start-rvs [opts] | stop-rvs | stop-server N | start-server N" >&2; exit 2 ;;
esac
