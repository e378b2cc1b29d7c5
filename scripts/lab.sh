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
#   --checks FILE: rvs runs the health checks of FILE (keepalived.conf syntax), and a sorry server
#   rvs-sorry 192.168.8.16 answers "hello SORRY" on :80 (for sorry_server 192.168.8.16 80);
#   --tcp-check connect|half-open sets how its TCP_CHECKs probe ([checks] tcp_check).
#
# Usage: scripts/lab.sh up [--workers N] [--driver af_packet|af_xdp] [--rules FILE]
#                          [--checks FILE [--tcp-check MODE]] [--no-rvs]
#        scripts/lab.sh down | status | start-rvs [...] | stop-rvs
#        scripts/lab.sh stop-server N | start-server N   (N = 1, 2: RSn's servers; tests use it)
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
checks=""
tcp_check=""
NS_SORRY=rvs-sorry

die() { echo "lab.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"

parse_opts() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --workers) workers=${2:?}; shift 2 ;;
            --driver) driver=${2:?}; shift 2 ;;
            --no-rvs) start_rvs=0; shift ;;
            --rules) rules=${2:?}; shift 2 ;;
            --checks) checks=${2:?}; shift 2 ;;
            --tcp-check) tcp_check=${2:?}; shift 2 ;;
            *) die "unknown option $1" ;;
        esac
    done
    [[ "$workers" =~ ^[1-9][0-9]?$ ]] || die "--workers must be 1..99"
    [ -z "$checks" ] || [ -r "$checks" ] || die "--checks $checks: no such readable file"
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

# RS1: HTTP :80, UDP :53. RS2: HTTP :80, :8000 and :21 (the seeds' port-mapping example),
# UDP :53. Both answer "hello RSn".
RS_PORTS=("--tcp 80 --udp 53" "--tcp 80 --tcp 8000 --tcp 21 --udp 53")

server_start() { # ns ip name ports pidname: a lab-server.py in ns, waited for until it answers
    local ns=$1 ip=$2 name=$3 ports=$4 tag=$5 dir=$RUN/www-$5
    mkdir -p "$dir"
    echo "hello $name" > "$dir/index.html"
    # shellcheck disable=SC2086
    ip netns exec "$ns" setsid "$PY" "$ROOT/scripts/lab-server.py" --bind "$ip" \
        --name "$name" --dir "$dir" $ports >"$RUN/http-$tag.log" 2>&1 < /dev/null &
    echo $! > "$RUN/http-$tag.pid"
}

server_wait() { # ns ip name tag
    local ns=$1 ip=$2 name=$3 tag=$4
    for _ in $(seq 100); do
        ip netns exec "$ns" curl -s -m 1 "http://$ip/" >/dev/null 2>&1 && break
        sleep 0.1
    done
    ip netns exec "$ns" curl -s -m 1 "http://$ip/" | grep -q "hello $name" \
        || die "HTTP server on $ns did not come up ($(cat "$RUN/http-$tag.log"))"
}

server_stop() { # tag
    if [ -f "$RUN/http-$1.pid" ]; then
        local p
        p=$(cat "$RUN/http-$1.pid")
        kill "$p" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        rm -f "$RUN/http-$1.pid"
    fi
}

servers_up() {
    for i in 0 1; do
        server_start "${NS_RS[$i]}" "${RS_IP[$i]}" "${RS_NAME[$i]}" "${RS_PORTS[$i]}" "rs$((i+1))"
    done
    for i in 0 1; do
        server_wait "${NS_RS[$i]}" "${RS_IP[$i]}" "${RS_NAME[$i]}" "rs$((i+1))"
    done
}

sorry_up() { # the sorry server of --checks labs: rvs-sorry 192.168.8.16, "hello SORRY" on :80
    if ! ip netns list | grep -qw $NS_SORRY; then
        ip netns add $NS_SORRY
        ip -n $NS_SORRY link set lo up
        veth rvs-sorry-s rvs-sorry-h
        ip link set rvs-sorry-s netns $NS_SW
        ip -n $NS_SW link set rvs-sorry-s master br0 up
        quiet_link rvs-sorry-s $NS_SW
        ip link set rvs-sorry-h netns $NS_SORRY
        ip -n $NS_SORRY link set rvs-sorry-h name eth0
        ip -n $NS_SORRY addr add 192.168.8.16/24 dev eth0
        ip -n $NS_SORRY link set eth0 up
        ip -n $NS_SORRY route add default via 192.168.8.13
        quiet_link eth0 $NS_SORRY
    fi
    if ! { [ -f $RUN/http-sorry.pid ] && kill -0 "$(cat $RUN/http-sorry.pid)" 2>/dev/null; }; then
        server_start $NS_SORRY 192.168.8.16 SORRY "--tcp 80" sorry
        server_wait $NS_SORRY 192.168.8.16 SORRY sorry
    fi
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
    if [ -n "$checks" ]; then
        printf '\n[checks]\nfile = "%s"\n' "$(readlink -f "$checks")" >> "$CONF"
        [ -z "$tcp_check" ] || printf 'tcp_check = "%s"\n' "$tcp_check" >> "$CONF"
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
    [ -z "$checks" ] || sorry_up
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
    for tag in rs1 rs2 sorry; do
        [ -f $RUN/http-$tag.pid ] && kill "$(cat $RUN/http-$tag.pid)" 2>/dev/null || true
        rm -f $RUN/http-$tag.pid
    done
    for ns in $NS_CLIENT $NS_SW "${NS_RS[@]}" $NS_SORRY; do
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
        n=${1:-}
        [[ "$n" =~ ^[12]$ ]] || die "$cmd needs the real server's number, 1 or 2"
        i=$((n-1))
        if [ "$cmd" = stop-server ]; then
            server_stop "rs$n"
        else
            server_stop "rs$n"
            server_start "${NS_RS[$i]}" "${RS_IP[$i]}" "${RS_NAME[$i]}" "${RS_PORTS[$i]}" "rs$n"
            server_wait "${NS_RS[$i]}" "${RS_IP[$i]}" "${RS_NAME[$i]}" "rs$n"
        fi
        ;;
    *) echo "usage: $0 up [--workers N] [--driver af_packet|af_xdp] [--rules FILE] [--checks FILE] [--no-rvs] | down | status | start-rvs [opts] | stop-rvs | stop-server N | start-server N" >&2; exit 2 ;;
esac
