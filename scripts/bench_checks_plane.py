#!/usr/bin/python3
"""Health checks at scale through the appliance (docs/benchmarks.md, "Health checks at scale").

rvs in the lab runs N half-open TCP_CHECKs every second from the data plane: 100-server
virtual services whose real servers are N listening ports of rvs-rs1 (192.168.8.14:20000...),
so N servers need no N addresses. After warm-up, every rvs thread's CPU time is read over a
window from /proc; then the listeners of `fail` of them close at a known instant and each
removal is timed from rvs's own log. Prints one JSON object. Called by
scripts/bench-checks-plane.sh, which owns the lab around it."""
import json, os, re, subprocess, sys, time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = "/run/rvs"
CONF = f"{RUN}/bench-checks.conf"
BASE = 20000

LISTENER = r"""
import socket, sys, time
base, n, fail = map(int, sys.argv[1:4])
socks = []
for p in range(base, base + n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("192.168.8.14", p))
    s.listen(64)
    socks.append(s)
print("ready", flush=True)
sys.stdin.readline()
t = time.time()
for s in socks[n - fail:]:
    s.close()
print(t, flush=True)
sys.stdin.readline()
"""


def sh(*a, **kw):
    return subprocess.run(a, check=True, capture_output=True, text=True, **kw).stdout


def rvsadm(*a):
    return sh(f"{ROOT}/target/release/rvsadm", *a)


def threads(pid):
    """{name: (utime, stime)} in clock ticks, summed over threads of the same name."""
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        f = stat[stat.rindex(")") + 2:].split()
        u, s = int(f[11]), int(f[12])
        pu, ps = out.get(name, (0, 0))
        out[name] = (pu + u, ps + s)
    return out


def loops():
    return json.loads(rvsadm("--stats-ports", "--json"))["workers"][0]["loops"]


def cpu_over(pid, seconds):
    """Each thread's CPU share (percent of one core) and the worker's poll loops per second
    over `seconds`."""
    c0, l0, t0 = threads(pid), loops(), time.time()
    time.sleep(seconds)
    c1, l1, t1 = threads(pid), loops(), time.time()
    hz = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for name, (u1, s1) in c1.items():
        u0, s0 = c0.get(name, (0, 0))
        cpu[name] = {"user": round(100 * (u1 - u0) / hz / (t1 - t0), 1),
                     "system": round(100 * (s1 - s0) / hz / (t1 - t0), 1)}
    return cpu, (l1 - l0) / (t1 - t0)


def pct(sorted_v, q):
    return sorted_v[min(len(sorted_v) - 1, int(q * len(sorted_v)))]


def main():
    servers, fail, window = (int(x) for x in sys.argv[1:4])
    per = 100
    lines = []
    for v in range((servers + per - 1) // per):
        lines.append(f"virtual_server 10.0.0.13 {8000 + v} {{\n delay_loop 1\n lb_algo rr\n"
                     " lb_kind NAT\n protocol TCP\n")
        for j in range(min(per, servers - v * per)):
            lines.append(f" real_server 192.168.8.14 {BASE + v * per + j} {{\n"
                         "  TCP_CHECK {\n   connect_timeout 1\n   retry 0\n  }\n }\n")
        lines.append("}\n")
    open(CONF, "w").write("".join(lines))
    lst = subprocess.Popen(["ip", "netns", "exec", "rvs-rs1", "/usr/bin/python3", "-c",
                            LISTENER, str(BASE), str(servers), str(fail)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert lst.stdout.readline().strip() == "ready", "listeners did not start"
        lab = f"{ROOT}/scripts/lab.sh"
        # The baseline: the same lab's rvs without checks, over half the window.
        sh("bash", lab, "stop-rvs")
        sh("bash", lab, "start-rvs")
        time.sleep(2)
        base_cpu, base_loops = cpu_over(int(open(f"{RUN}/rvs.pid").read()), window / 2)
        sh("bash", lab, "stop-rvs")
        sh("bash", lab, "start-rvs", "--checks", CONF, "--tcp-check", "half-open")
        pid = int(open(f"{RUN}/rvs.pid").read())
        deadline = time.time() + 30
        while True:
            up = rvsadm("-L", "-n").count("Masq")
            if up >= servers:
                break
            assert time.time() < deadline, f"only {up} of {servers} servers up after 30 s"
            time.sleep(0.5)
        time.sleep(3)
        h0, t0 = json.loads(rvsadm("--list-checks", "--json"))["half_open"], time.time()
        cpu, checks_loops = cpu_over(pid, window)
        h1, t1 = json.loads(rvsadm("--list-checks", "--json"))["half_open"], time.time()
        log_from = os.path.getsize(f"{RUN}/rvs.log")
        lst.stdin.write("fail\n")
        lst.stdin.flush()
        t_fail = float(lst.stdout.readline())
        time.sleep(4)
        log = open(f"{RUN}/rvs.log").read()[log_from:]
        pat = re.compile(r"^(\S+Z) .*Removing service \[192\.168\.8\.14\]:tcp:(\d+) from VS", re.M)
        detect, wrong = [], 0
        for ts, port in pat.findall(log):
            at = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            if int(port) >= BASE + servers - fail:
                detect.append(at.timestamp() - t_fail)
            else:
                wrong += 1
        detect.sort()
        res = {
            "servers": servers, "window_s": round(t1 - t0, 1),
            "syns_per_s": round((h1["sent"] - h0["sent"]) / (t1 - t0)),
            "answers_per_s": round((h1["answers"] - h0["answers"]) / (t1 - t0)),
            "lost": h1["lost"] - h0["lost"],
            "cpu_percent_of_one_core": cpu,
            "baseline_cpu_percent_of_one_core": base_cpu,
            "worker_loops_per_s": round(checks_loops),
            "baseline_worker_loops_per_s": round(base_loops),
            "failed": fail, "detected": len(detect), "healthy_removed": wrong,
        }
        if detect:
            res.update({"detect_p50_s": round(pct(detect, 0.5), 2),
                        "detect_p99_s": round(pct(detect, 0.99), 2),
                        "detect_max_s": round(detect[-1], 2)})
        print(json.dumps(res, indent=1))
    finally:
        lst.kill()
        lst.wait()


main()
