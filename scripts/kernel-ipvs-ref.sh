#!/usr/bin/env bash
# kernel-ipvs-ref.sh — record golden scheduler decisions from a REAL Linux IPVS.
#
# Boots Debian's user-mode-linux kernel (Linux 6.1, IPVS as modules) as an
# ordinary process with the host's / as its hostfs root, and inside it:
#   * loads ip_vs and every scheduler module,
#   * builds a tiny, closed network entirely inside UML:
#       client netns --veth--> UML root netns (the director, VIP 10.0.0.13)
#       and a dummy interface carrying 192.168.8.0/24 (the real servers), so
#       NAT'd SYNs are simply dropped: no RST, connections stay in SYN_RECV,
#   * for each scenario configures a NAT service with the real ipvsadm 1.31,
#     sends SYNs one at a time (raw socket, IP_HDRINCL, spoofed sources) from
#     the client netns, and records which real server IPVS picked for each
#     client endpoint (from /proc/net/ip_vs_conn, what `ipvsadm -L -n -c` reads),
#     plus the raw `ipvsadm -L -n`, `-L -n --nosort` and `-S -n` text.
# Every packet stays inside UML: the UML kernel has no network device to the
# host at all.  Nothing on the host's network is created or touched.
#
# Usage (root, Debian bookworm):  scripts/kernel-ipvs-ref.sh [OUTDIR]
#   OUTDIR defaults to crates/rvs-ctl/tests/fixtures/kernel_ipvs (its *.json are replaced).
# Env: KREF_KEEP_WORK=1 keeps the temporary work dir (UML log, raw results).
set -euo pipefail

die() { echo "kernel-ipvs-ref: $*" >&2; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$REPO/crates/rvs-ctl/tests/fixtures/kernel_ipvs}
[ "$(id -u)" = 0 ] || die "must run as root (apt-get, UML hostfs root)"

# ---------------------------------------------------------------- packages
need=()
command -v linux.uml >/dev/null 2>&1 || need+=(user-mode-linux)
[ -x /usr/sbin/ipvsadm ] || need+=(ipvsadm)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v modprobe >/dev/null 2>&1 || need+=(kmod)
if [ ${#need[@]} -gt 0 ]; then
    echo "kernel-ipvs-ref: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
UML=$(command -v linux.uml) || die "linux.uml not found after install"
UMLVER=$(ls /usr/lib/uml/modules | sort -V | tail -1)
[ -n "$UMLVER" ] || die "no /usr/lib/uml/modules/<version>"
[ -e "/usr/lib/uml/modules/$UMLVER/kernel/net/netfilter/ipvs/ip_vs.ko" ] ||
    die "user-mode-linux $UMLVER ships no ip_vs.ko"

WORK=$(mktemp -d /tmp/kernel-ipvs-ref.XXXXXX)
cleanup() { [ "${KREF_KEEP_WORK:-0}" = 1 ] && echo "work dir kept: $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/result"
# KREF_ONLY="rr_w123 mh_w123": record only these scenarios (debugging)
[ -n "${KREF_ONLY:-}" ] && echo "$KREF_ONLY" >"$WORK/only"

# ------------------------------------------------------ init inside UML (pid 1)
cat >"$WORK/init.sh" <<'EOF_INIT'
#!/bin/bash
# Runs as PID 1 inside UML.  The host's / is our root (hostfs): mount private
# proc/sys/tmpfs so nothing we create lands on the host, except $WORK/result.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
WORK=$(dirname "$(readlink -f "$0")")
poweroff_uml() { sync; echo o >/proc/sysrq-trigger; sleep 30; }
trap poweroff_uml EXIT
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run            # /run/netns, module root: UML-private
set -e
KVER=$(uname -r)
MODROOT=/run/kref-modroot
mkdir -p $MODROOT/lib/modules
ln -s /usr/lib/uml/modules/$KVER $MODROOT/lib/modules/$KVER
mp() { modprobe -d $MODROOT "$@"; }
mp veth; mp dummy

# director = UML root netns; clients = netns "client"
ip link set lo up
ip netns add client
ip link add veth-lb type veth peer name veth-cl
ip link set veth-cl netns client
ip addr add 10.0.0.1/32 dev veth-lb
ip addr add 10.0.0.13/32 dev veth-lb          # the VIP: local, so LOCAL_IN
ip link set veth-lb up
# Replies to the (spoofed) clients go via the client netns' own address, whose
# MAC is static: no ARP for 200 non-existent hosts (ICMPs stuck in ARP queues
# would fill the ICMP socket's send buffer and later ICMPs would be lost).
ip route add 10.255.255.254/32 dev veth-lb
ip route add 10.0.0.0/8 via 10.255.255.254 dev veth-lb
ip link add dummy-rs type dummy                # real servers "live" here:
ip addr add 192.168.8.1/24 dev dummy-rs        # NAT'd SYNs are just dropped
ip link set dummy-rs up
sysctl -qw net.ipv4.ip_forward=1
for k in all default veth-lb; do sysctl -qw net.ipv4.conf.$k.rp_filter=0; done
# no ICMP rate limiting: a SYN IPVS cannot schedule (no dest) is answered by
# exactly one ICMP port-unreachable, which the driver counts (Icmp OutDestUnreachs)
sysctl -qw net.ipv4.icmp_ratemask=0
ip -n client link set lo up
ip -n client addr add 10.255.255.254/8 dev veth-cl
ip -n client link set veth-cl up
LBMAC=$(cat /sys/class/net/veth-lb/address)
ip -n client neigh replace 10.0.0.13 lladdr "$LBMAC" dev veth-cl nud permanent
CLMAC=$(ip -n client -o link show veth-cl | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
ip neigh replace 10.255.255.254 lladdr "$CLMAC" dev veth-lb nud permanent
set +e
/usr/bin/python3 "$WORK/driver.py" "$WORK/result" "$MODROOT"
echo "driver exit $?" >"$WORK/result/driver.rc"
EOF_INIT
chmod +x "$WORK/init.sh"

# ------------------------------------------------ scenario driver inside UML
cat >"$WORK/driver.py" <<'EOF_PY'
import ctypes, json, os, socket, struct, subprocess, sys, time

OUTDIR, MODROOT = sys.argv[1], sys.argv[2]
VIP, VPORT = "10.0.0.13", 80
SVC = f"{VIP}:{VPORT}"
RIPS = ["192.168.8.14", "192.168.8.15", "192.168.8.16", "192.168.8.17"]
SCHEDS = ["rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "lblc", "lblcr",
          "fo", "ovf", "mh", "twos"]
SYN_RECV_TIMEOUT_S = 60
KVER = os.uname().release
MODDIR = f"/usr/lib/uml/modules/{KVER}/kernel/net/netfilter/ipvs"

def log(*a):
    print("[kref]", *a, flush=True)

def run(cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{cmd}: rc={p.returncode} {p.stderr.strip()}")
    return p

def modprobe(*args):
    return run(["modprobe", "-d", MODROOT, *args])

# ---- deterministic PRNG (splitmix64), so the client list is reproducible
class SplitMix:
    def __init__(self, seed): self.s = seed & (2**64 - 1)
    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & (2**64 - 1)
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
        return z ^ (z >> 31)
    def below(self, n): return self.next() % n

def gen_clients(n, seed):
    """n distinct client IPs 10.A.B.C (A 1..254, B 0..255, C 1..254), random ports."""
    r, seen, out = SplitMix(seed), set(), []
    while len(out) < n:
        ip = f"10.{1 + r.below(254)}.{r.below(256)}.{1 + r.below(254)}"
        if ip in seen:
            continue
        seen.add(ip)
        out.append((ip, 1024 + r.below(64512)))
    return out

def gen_persistent_clients(n, distinct, seed):
    """n SYNs from `distinct` IPs: each IP first appears in order, later ones
    repeat earlier IPs with a fresh source port (to show template stickiness)."""
    r = SplitMix(seed)
    ips = [ip for ip, _ in gen_clients(distinct, seed ^ 0x5A5A)]
    out, used, introduced = [], set(), 0
    while len(out) < n:
        if introduced < distinct and (introduced < 8 or r.below(3) == 0
                                      or n - len(out) <= distinct - introduced):
            ip = ips[introduced]; introduced += 1
        else:
            ip = ips[r.below(introduced)]
        while True:
            port = 1024 + r.below(64512)
            if (ip, port) not in used:
                break
        used.add((ip, port))
        out.append((ip, port))
    return out

# ---- raw SYN sender living in the client netns
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000

def client_socket():
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    cl = os.open("/run/netns/client", os.O_RDONLY)
    if libc.setns(cl, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns(client)")
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    if libc.setns(home, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns(home)")
    os.close(home); os.close(cl)
    return s

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

IP_ID = [1]
def syn_packet(src, sport, dst, dport, seq):
    sb, db = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    c = csum(struct.pack("!4s4sBBH", sb, db, 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    IP_ID[0] = (IP_ID[0] + 1) & 0xFFFF
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), IP_ID[0], 0x4000,
                     64, 6, 0, sb, db)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp

# ---- /proc/net/ip_vs_conn of the director (UML root netns = pid 1's)
def hexip(h):
    return socket.inet_ntoa(struct.pack("!I", int(h, 16)))

def read_conns():
    conns = []
    with open("/proc/1/net/ip_vs_conn") as f:
        next(f)
        for line in f:
            p = line.split()
            conns.append({"proto": p[0], "cip": hexip(p[1]), "cport": int(p[2], 16),
                          "vip": hexip(p[3]), "vport": int(p[4], 16),
                          "dip": hexip(p[5]), "dport": int(p[6], 16),
                          "state": p[7], "expires": int(p[8])})
    return conns

def icmp_out_dest_unreachs():
    with open("/proc/1/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Icmp:")]
    return int(rows[1][rows[0].index("OutDestUnreachs")])

def ipvsadm(args, check=True):
    return run(["ipvsadm", *args], check=check)

def reset_ipvs():
    """ipvsadm -C, then unload and reload ip_vs + all schedulers so that no
    connection, trashed dest or counter survives from the previous scenario."""
    ipvsadm(["-C"], check=False)
    loaded = [l.split()[0] for l in open("/proc/modules")]
    for m in loaded:
        if m.startswith("ip_vs_"):
            run(["rmmod", m])
    if "ip_vs" in loaded:
        run(["rmmod", "ip_vs"])
    modprobe("ip_vs")
    for s in AVAILABLE:
        modprobe(f"ip_vs_{s}")
    assert not read_conns(), "connections survived the reset"

def vs_sysctls():
    d = "/proc/sys/net/ipv4/vs"
    return {k: open(f"{d}/{k}").read().strip() for k in sorted(os.listdir(d))}

# ---- scenarios
AVAILABLE, SKIPPED = [], {}
for s in SCHEDS:
    if os.path.exists(f"{MODDIR}/ip_vs_{s}.ko"):
        AVAILABLE.append(s)
    else:
        SKIPPED[s] = f"no ip_vs_{s}.ko in {MODDIR} (not in Linux {KVER})"

CLIENTS200 = gen_clients(200, 0x1A2B3C4D)
W123 = [(RIPS[0], "80", 1), (RIPS[1], "80", 2), (RIPS[2], "80", 3)]
W111 = [(RIPS[0], "80", 1), (RIPS[1], "80", 1), (RIPS[2], "80", 1)]

def svc_cmds(sched, dests, extra=()):
    cmds = [["-A", "-t", SVC, "-s", sched, *extra]]
    for ip, port, w in dests:
        rs = f"{ip}:{port}" if port is not None else ip
        cmds.append(["-a", "-t", SVC, "-r", rs, "-m"] + (["-w", str(w)] if w is not None else []))
    return cmds

SCENARIOS = []
for s in AVAILABLE:
    SCENARIOS.append((f"{s}_w123", f"scheduler {s}; dests .14 w1, .15 w2, .16 w3 added in that order; 200 distinct clients",
                      svc_cmds(s, W123), CLIENTS200))
SCENARIOS += [
    ("rr_w111", "rr, equal weights 1,1,1", svc_cmds("rr", W111), CLIENTS200),
    ("wrr_w111", "wrr, equal weights 1,1,1", svc_cmds("wrr", W111), CLIENTS200),
    ("sh_port_w123", "sh with -b sh-port (source port mixed into the hash)",
     svc_cmds("sh", W123, ["-b", "sh-port"]), CLIENTS200),
    ("mh_port_w123", "mh with -b mh-port (source port mixed into the hash)",
     svc_cmds("mh", W123, ["-b", "mh-port"]), CLIENTS200),
    ("wrr_w246", "wrr with weights 2,4,6 (gcd 2)",
     svc_cmds("wrr", [(RIPS[0], "80", 2), (RIPS[1], "80", 4), (RIPS[2], "80", 6)]), CLIENTS200),
    ("ovf_w40_70_100", "ovf with weights 40,70,100: each dest takes connections until activeconns > weight",
     svc_cmds("ovf", [(RIPS[0], "80", 40), (RIPS[1], "80", 70), (RIPS[2], "80", 100)]), CLIENTS200),
    ("rr_persist60_w123", "persistent rr (-p 60): 200 SYNs from 60 client IPs; repeats use a new source port and must follow the template",
     svc_cmds("rr", W123, ["-p", "60"]), gen_persistent_clients(200, 60, 0xBEEF)),
    ("rr_dest_port0", "rr with a NAT dest added as 192.168.8.17:0 and one added with no port (192.168.8.16); shows how -L/-S print them and which dport connections get",
     svc_cmds("rr", [(RIPS[0], "80", 1), (RIPS[2], None, None), (RIPS[3], "0", None)]),
     CLIENTS200[:30]),
]
RAW_CONN_LISTING = {"rr_persist60_w123", "rr_dest_port0"}

def run_scenario(sock, name, desc, cmds, clients):
    reset_ipvs()
    res = {"scenario": name, "description": desc, "kernel": KVER,
           "kernel_uname": " ".join(os.uname()), "ipvsadm_version": IPVSADM_VERSION,
           "reset": "ipvsadm -C; rmmod ip_vs_* ip_vs; modprobe ip_vs + every scheduler (fresh IPVS state)",
           "vip": SVC,
           "commands": [], "syns": []}
    t0 = time.monotonic()
    ms = lambda: int((time.monotonic() - t0) * 1000)
    for c in cmds:
        p = ipvsadm(c, check=False)
        res["commands"].append({"cmd": "ipvsadm " + " ".join(c), "rc": p.returncode,
                                "stderr": p.stderr, "t_ms": ms()})
        if p.returncode != 0:
            raise RuntimeError(f"{name}: ipvsadm {' '.join(c)} failed: {p.stderr}")
    res["list_n_before"] = ipvsadm(["-L", "-n"]).stdout
    for i, (ip, port) in enumerate(clients):
        unreach0 = icmp_out_dest_unreachs()
        sock.sendto(syn_packet(ip, port, VIP, VPORT, 0x10000000 + i), (VIP, 0))
        t_send = ms()
        deadline = time.monotonic() + 3
        rs = False
        while rs is False:
            for c in read_conns():
                if c["cip"] == ip and c["cport"] == port and c["vport"] == VPORT:
                    rs = f"{c['dip']}:{c['dport']}"
                    break
            else:
                if icmp_out_dest_unreachs() > unreach0:
                    rs = None          # IPVS found no dest: ICMP port unreachable + drop
                elif time.monotonic() > deadline:
                    snmp = open("/proc/1/net/snmp").read()
                    stats = ipvsadm(["-L", "-n", "--stats"], check=False).stdout
                    log(f"diag {name} #{i}: unreach0={unreach0}\n{snmp}\n{stats}")
                    raise RuntimeError(f"{name}: SYN #{i} {ip}:{port}: no connection and no ICMP")
                else:
                    time.sleep(0.002)
        res["syns"].append({"ip": ip, "port": port, "rs": rs, "t_ms": t_send})
    res["t_last_syn_ms"] = ms()
    res["list_n"] = ipvsadm(["-L", "-n"]).stdout
    res["list_n_nosort"] = ipvsadm(["-L", "-n", "--nosort"]).stdout
    res["save_n"] = ipvsadm(["-S", "-n"]).stdout
    final = read_conns()
    if name in RAW_CONN_LISTING:
        res["list_n_c"] = ipvsadm(["-L", "-n", "-c"]).stdout
    res["t_snapshot_done_ms"] = ms()
    # every connection must still be there, in the state it was created in
    byep = {(c["cip"], c["cport"]): c for c in final if c["cport"] != 0}
    states = {}
    for s in res["syns"]:
        c = byep.get((s["ip"], s["port"]))
        if s["rs"] is None:
            if c is not None:
                raise RuntimeError(f"{name}: {s} answered by ICMP but has a connection")
            states["(no dest: ICMP port unreachable)"] = states.get("(no dest: ICMP port unreachable)", 0) + 1
            continue
        if c is None or f"{c['dip']}:{c['dport']}" != s["rs"]:
            raise RuntimeError(f"{name}: connection {s} vanished or changed before the snapshot")
        states[c["state"]] = states.get(c["state"], 0) + 1
    res["conn_states_at_snapshot"] = states
    tmpl = [c for c in final if c["cport"] == 0]
    if tmpl:
        res["templates"] = sorted(({"ip": c["cip"], "cport": c["cport"], "vip": f"{c['vip']}:{c['vport']}",
                                    "rs": f"{c['dip']}:{c['dport']}", "state": c["state"]} for c in tmpl),
                                  key=lambda t: tuple(int(x) for x in t["ip"].split(".")))
    if res["t_snapshot_done_ms"] - res["syns"][0]["t_ms"] >= (SYN_RECV_TIMEOUT_S - 5) * 1000:
        raise RuntimeError(f"{name}: too slow ({res['t_snapshot_done_ms']} ms): SYN_RECV timeout may have hit")
    counts = {}
    for s in res["syns"]:
        k = s["rs"] or "none"
        counts[k] = counts.get(k, 0) + 1
    res["rs_counts"] = dict(sorted(counts.items()))
    return res

def dump(path, obj):
    # one syn / template per line keeps the files small and diff-friendly
    lines = ["{"]
    items = list(obj.items())
    for k, (key, val) in enumerate(items):
        comma = "," if k < len(items) - 1 else ""
        if key in ("syns", "templates", "commands") and val:
            lines.append(f"  {json.dumps(key)}: [")
            for j, e in enumerate(val):
                lines.append("    " + json.dumps(e, separators=(",", ":")) + ("," if j < len(val) - 1 else ""))
            lines.append("  ]" + comma)
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(val)}{comma}")
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")

modprobe("ip_vs")
for s in AVAILABLE:
    modprobe(f"ip_vs_{s}")
IPVSADM_VERSION = ipvsadm(["--version"]).stdout.strip()
log("kernel", KVER, "|", IPVSADM_VERSION, "| schedulers", AVAILABLE, "| skipped", list(SKIPPED))
sock = client_socket()
index = {"kernel": KVER, "kernel_uname": " ".join(os.uname()),
         "vs_sysctls_defaults": vs_sysctls(), "ipvsadm_version": IPVSADM_VERSION, "schedulers_recorded": AVAILABLE,
         "schedulers_skipped": SKIPPED, "scenarios": []}
ok = True
ONLY = open(f"{OUTDIR}/../only").read().split() if os.path.exists(f"{OUTDIR}/../only") else []
for name, desc, cmds, clients in SCENARIOS:
    if ONLY and name not in ONLY:
        continue
    try:
        res = run_scenario(sock, name, desc, cmds, clients)
    except Exception as e:
        log("FAILED", name, e)
        index["scenarios"].append({"scenario": name, "error": str(e)})
        ok = False
        continue
    dump(f"{OUTDIR}/{name}.json", res)
    index["scenarios"].append({"scenario": name, "file": f"{name}.json", "syns": len(res["syns"]),
                               "rs_counts": res["rs_counts"]})
    log(f"{name}: {res['rs_counts']} in {res['t_snapshot_done_ms']} ms")
with open(f"{OUTDIR}/index.json", "w") as f:
    json.dump(index, f, indent=2)
    f.write("\n")
open(f"{OUTDIR}/{'DONE' if ok else 'FAILED'}", "w").close()
EOF_PY

# ------------------------------------------------------------------ run UML
echo "kernel-ipvs-ref: booting $UML (Linux $UMLVER, hostfs root); log: $WORK/uml.log"
export TMPDIR=/dev/shm
set +e
timeout 1800 "$UML" mem=512M root=/dev/root rootfstype=hostfs rootflags=/ rw \
    init="$WORK/init.sh" con=null con0=fd:0,fd:1 </dev/null >"$WORK/uml.log" 2>&1
rc=$?
set -e
grep '^\[kref\]' "$WORK/uml.log" || true
if [ ! -e "$WORK/result/DONE" ]; then
    KREF_KEEP_WORK=1
    tail -40 "$WORK/uml.log" >&2
    die "UML run did not complete (timeout/uml rc=$rc); see $WORK"
fi
mkdir -p "$OUT"
if [ -n "${KREF_ONLY:-}" ]; then   # partial run: refresh just those scenarios
    for f in "$WORK"/result/*.json; do
        [ "$(basename "$f")" = index.json ] || cp "$f" "$OUT"/
    done
else
    rm -f "$OUT"/*.json
    cp "$WORK"/result/*.json "$OUT"/
fi
echo "kernel-ipvs-ref: wrote $(ls "$WORK"/result/*.json | wc -l) files to $OUT"
