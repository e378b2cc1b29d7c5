"""bench.sh --kernel-flood: NAT forwarding with the exception path idle against flooded at its
limit (issue 11), from the counter snapshots of alternating runs; the result JSON, its table
and the checks that fail a run.

Every run is one rvs process with a kernel twin on the private port; the flooded runs replay a
private pcap with one host-bound datagram (real server -> DIP:9) after every N replies. What
rvs forwards in a run is NAT: the frames the twin itself transmitted (from_kernel, ARP for its
ICMP errors) are taken out. What the private port received that was host-bound is what went to
the kernel path: to_kernel (handed to the management core) + kernel_drops (over the limit, or
a full ring); the replies are the rest, and the hit ratio is taken over them.
"""
import os
import statistics

from .common import load_json
from .counters import kernel_deltas, port_deltas, svc_conns, table_conns

# Each flooded run's to_kernel rate must be the configured kernel_rate within this (relative):
# the bucket refills at exactly that rate; what is left is the reads' timing.
RATE_TOLERANCE = 0.10
# The host-bound share of the private port's input, measured against the pcap's.
SHARE_TOLERANCE = 0.10
# Host-bound packets an idle run may see (per private packet received): none are replayed.
IDLE_HOST_MAX = 1e-4
# The target: the flooded NAT rate at most 5% below the idle one.
TARGET_MAX_DROP = 0.05


def spread(xs):
    """median, min, max and (max - min) / median of a list of rates."""
    m = statistics.median(xs)
    return {"median": round(m, 4), "min": round(min(xs), 4), "max": round(max(xs), 4),
            "spread": round((max(xs) - min(xs)) / m, 4) if m else None,
            "runs": [round(x, 4) for x in xs]}


def twin_stats(work, snap):
    """The twin's RX/TX packets and drops from `ip -s -j link show` (SNAP-twin.json), and when
    they were read ("t", the middle of that read, from SNAP-twin-time.txt); None if unreadable."""
    try:
        s = load_json(os.path.join(work, snap + "-twin.json"))[0]["stats64"]
        with open(os.path.join(work, snap + "-twin-time.txt")) as f:
            t0, t1 = (float(x) for x in f.read().split())
        return {"rx_packets": s["rx"]["packets"], "rx_dropped": s["rx"]["dropped"],
                "tx_packets": s["tx"]["packets"], "t": (t0 + t1) / 2}
    except (OSError, ValueError, LookupError, TypeError):
        return None


CPUSTAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpustat(work, snap):
    """Per-CPU time counters of /proc/stat (SNAP-cpustat.txt): {"cpuN": {field: ticks}}."""
    try:
        with open(os.path.join(work, snap + "-cpustat.txt")) as f:
            rows = [line.split() for line in f if line.startswith("cpu")]
        return {r[0]: dict(zip(CPUSTAT_FIELDS, (int(x) for x in r[1:9]))) for r in rows}
    except (OSError, ValueError):
        return None


def cpu_shares(b, a):
    """Each CPU's share of the window per /proc/stat field (guest time is inside user)."""
    out = {}
    for cpu in sorted(set(a) & set(b)):
        d = {k: a[cpu][k] - b[cpu][k] for k in CPUSTAT_FIELDS}
        tot = sum(d.values())
        if tot > 0:
            out[cpu] = {k: round(v / tot, 4) for k, v in d.items()}
    return out


def sched(work, snap):
    """The workers' (run ns, run-queue wait ns) summed, from SNAP-sched.txt (schedstat lines)."""
    try:
        with open(os.path.join(work, snap + "-sched.txt")) as f:
            rows = [line.split() for line in f if line.strip()]
        return sum(int(r[0]) for r in rows), sum(int(r[1]) for r in rows)
    except (OSError, ValueError, IndexError):
        return None


def run_window(work, name, workers):
    """One run's measured window, from NAME-{before,after}-{ports,time,list,twin}.json."""
    def load(n):
        return load_json(os.path.join(work, f"{name}-{n}.json"))

    b, a = load("before-ports"), load("after-ports")
    tb, ta = load("before-time"), load("after-time")
    lb, la = load("before-list"), load("after-list")
    dt = ta["t"] - tb["t"]
    share = (ta["worker_ns"] - tb["worker_ns"]) / 1e9 / dt / workers
    d = port_deltas(b, a)
    k = kernel_deltas(b, a)
    pub, priv = d["public"], d["private"]
    kp = k["private"]
    from_k = k["public"]["from_kernel"] + kp["from_kernel"]
    nat = pub["tx_packets"] + priv["tx_packets"] - from_k
    rx = pub["rx_packets"] + priv["rx_packets"]
    host = kp["to_kernel"] + kp["kernel_drops"]
    replies = priv["rx_packets"] - host
    mpps = nat / dt / 1e6
    w = {
        "duration_s": round(dt, 3),
        "nat_mpps": round(mpps, 4),
        "rx_mpps": round(rx / dt / 1e6, 4),
        "worker_cpu_share": round(share, 4),
        "nat_mpps_per_worker_cpu_second": round(mpps / share / workers, 4) if share > 0 else None,
        "nat_forwarded_packets": nat, "received_packets": rx,
        "host_bound_packets": host,
        "host_bound_share_of_private_input": round(host / priv["rx_packets"], 5) if priv["rx_packets"] else 0,
        "host_bound_share_of_input": round(host / rx, 5) if rx else 0,
        "reply_hit_ratio": round(pub["tx_packets"] / replies, 5) if replies > 0 else 0,
        "request_fwd_ratio": round((priv["tx_packets"] - kp["from_kernel"]) / pub["rx_packets"], 5)
        if pub["rx_packets"] else 0,
        "to_kernel_per_s": round(kp["to_kernel"] / dt, 1),
        "kernel_drops_per_s": round(kp["kernel_drops"] / dt, 1),
        "from_kernel_per_s": round(kp["from_kernel"] / dt, 1),
        "public": dict(pub, **k["public"]), "private": dict(priv, **kp),
        "new_conns": svc_conns(la) - svc_conns(lb),
        "conns_in_table_end": table_conns(la),
        "twin": next((p.get("kernel", "") for p in a["ports"] if p["role"] == "private"), ""),
    }
    t0, t1 = (twin_stats(work, f"{name}-{x}") for x in ("before", "after"))
    if t0 and t1 and t1["t"] > t0["t"]:
        w["twin_rx_per_s"] = round((t1["rx_packets"] - t0["rx_packets"]) / (t1["t"] - t0["t"]), 1)
        w["twin_rx_dropped"] = t1["rx_dropped"] - t0["rx_dropped"]
        w["twin_tx_packets"] = t1["tx_packets"] - t0["tx_packets"]
    w["twin_removed_after_run"] = os.path.exists(os.path.join(work, f"{name}-twin-gone.txt"))
    c0, c1 = cpustat(work, name + "-before"), cpustat(work, name + "-after")
    if c0 and c1:
        w["cpus"] = cpu_shares(c0, c1)
    try:
        with open(os.path.join(work, name + "-after-thp.txt")) as f:
            w["anon_huge_pages_kb"] = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    s0, s1 = sched(work, name + "-before"), sched(work, name + "-after")
    if s0 and s1:
        # Of the wall time, per worker: waiting on its CPU's run queue (another task ran).
        w["worker_runqueue_wait_share"] = round((s1[1] - s0[1]) / 1e9 / dt / workers, 4)
    return w


def run_errors(name, kind, w, rate, expected_share):
    """Why one run does not show what it claims (empty: it does)."""
    e = []
    if w["nat_forwarded_packets"] <= 0:
        e.append(f"{name}: nothing was forwarded")
    if w["reply_hit_ratio"] < 0.99:
        e.append(f"{name}: reply hit ratio {w['reply_hit_ratio']:.4f}: replies miss their connections")
    if w["request_fwd_ratio"] < 0.99:
        e.append(f"{name}: request forward ratio {w['request_fwd_ratio']:.4f}: client packets are dropped")
    if w["new_conns"] > 0.001 * max(w["public"]["rx_packets"], 1):
        e.append(f"{name}: {w['new_conns']} new connections during the measurement: not steady state")
    if not w["twin"]:
        e.append(f"{name}: the private port has no kernel twin")
    if not w["twin_removed_after_run"]:
        e.append(f"{name}: the kernel twin was not seen removed after the run")
    pub = w["public"]
    if pub["to_kernel"] or pub["kernel_drops"]:
        e.append(f"{name}: the public port (no twin) sent {pub['to_kernel']} up and dropped "
                 f"{pub['kernel_drops']} for the kernel")
    priv_rx = w["private"]["rx_packets"]
    if kind == "idle":
        if w["host_bound_packets"] > IDLE_HOST_MAX * max(priv_rx, 1):
            e.append(f"{name}: {w['host_bound_packets']} host-bound packets in an idle run")
        return e
    if w["private"]["kernel_drops"] <= 0:
        e.append(f"{name}: no kernel_drops: the flood did not reach the limit")
    lo, hi = rate * (1 - RATE_TOLERANCE), rate * (1 + RATE_TOLERANCE)
    if not lo <= w["to_kernel_per_s"] <= hi:
        e.append(f"{name}: to_kernel {w['to_kernel_per_s']:.0f}/s, not the kernel_rate {rate}/s "
                 f"(+-{RATE_TOLERANCE:.0%})")
    got = w["host_bound_share_of_private_input"]
    if abs(got - expected_share) > SHARE_TOLERANCE * expected_share:
        e.append(f"{name}: host-bound share of the private input {got:.4f}, the pcap's is "
                 f"{expected_share:.4f}: the flood is not what was replayed")
    return e


def bracket_ratios(runs, key):
    """Each flooded run's `key` against the mean of the idle runs either side of it (the one
    before only, for a last flooded run): a drift of the machine's speed that is linear over
    the three runs cancels out."""
    out = []
    for i, r in enumerate(runs):
        if r["kind"] != "flood" or not r.get(key):
            continue
        near = [runs[j][key] for j in (i - 1, i + 1)
                if 0 <= j < len(runs) and runs[j]["kind"] == "idle" and runs[j].get(key)]
        if near:
            out.append(round(r[key] / (sum(near) / len(near)), 4))
    return out


def kflood_report(work, p, manifest, machine):
    """The result of a bench.sh --kernel-flood invocation: (result, lines). p: its parameters
    (see the kflood-report subcommand); manifest: rvs-pcapgen's of the flooded replay."""
    workers, rate = p.workers, p.kernel_rate
    files = manifest["files"]
    priv_pkts = sum(f["packets"] for f in files["private"])
    pub_pkts = sum(f["packets"] for f in files["public"])
    flood_pkts = manifest.get("kernel_flood", {}).get("packets", 0)
    expected = flood_pkts / priv_pkts if priv_pkts else 0
    runs, errors, warnings = [], [], []
    for name in p.runs:
        kind = "flood" if name.startswith("flood") else "idle"
        w = run_window(work, name, workers)
        w = dict({"run": name, "kind": kind}, **w)
        errors += run_errors(name, kind, w, rate, expected)
        if kind == "flood" and w.get("twin_rx_per_s") is not None \
                and w["twin_rx_per_s"] < (1 - RATE_TOLERANCE) * w["to_kernel_per_s"]:
            warnings.append(f"{name}: the twin received {w['twin_rx_per_s']:.0f}/s of the "
                            f"{w['to_kernel_per_s']:.0f}/s sent up")
        for key, f in (("perf_report", "perf-report-" + name + ".txt"),
                       ("perf_report_worker_cpus", "perf-cpu-report-" + name + ".txt")):
            pf = os.path.join(work, f)
            if os.path.exists(pf):
                with open(pf) as fh:
                    w[key] = fh.read()
        runs.append(w)
    idle = [r for r in runs if r["kind"] == "idle"]
    flood = [r for r in runs if r["kind"] == "flood"]
    if not idle or not flood:
        errors.append("the invocation needs idle and flooded runs")

    def summary(rs):
        if not rs:
            return None
        pc = [r["nat_mpps_per_worker_cpu_second"] for r in rs if r["nat_mpps_per_worker_cpu_second"]]
        waits = [r["worker_runqueue_wait_share"] for r in rs if "worker_runqueue_wait_share" in r]
        return {"nat_mpps": spread([r["nat_mpps"] for r in rs]),
                "nat_mpps_per_worker_cpu_second": spread(pc) if pc else None,
                "rx_mpps": spread([r["rx_mpps"] for r in rs]),
                "worker_cpu_share": spread([r["worker_cpu_share"] for r in rs]),
                "to_kernel_per_s": spread([r["to_kernel_per_s"] for r in rs]),
                "kernel_drops_per_s": spread([r["kernel_drops_per_s"] for r in rs]),
                "worker_runqueue_wait_share": spread(waits) if waits else None,
                "reply_hit_ratio_min": min(r["reply_hit_ratio"] for r in rs),
                "request_fwd_ratio_min": min(r["request_fwd_ratio"] for r in rs),
                "host_bound_share_of_input": spread([r["host_bound_share_of_input"] for r in rs])}

    si, sf = summary(idle), summary(flood)
    ratio = ratio_pc = None
    if si and sf:
        ratio = round(sf["nat_mpps"]["median"] / si["nat_mpps"]["median"], 4) if si["nat_mpps"]["median"] else None
        a, b = si["nat_mpps_per_worker_cpu_second"], sf["nat_mpps_per_worker_cpu_second"]
        ratio_pc = round(b["median"] / a["median"], 4) if a and b and a["median"] else None
    brackets = bracket_ratios(runs, "nat_mpps")
    brackets_pc = bracket_ratios(runs, "nat_mpps_per_worker_cpu_second")
    res = {
        "mode": "kernel-flood",
        "scenario": p.scenario, "conns": p.conns, "workers": workers, "frame": p.frame,
        "steer": p.steer, "reals": p.reals, "acks": p.acks, "rounds": p.rounds,
        "duration_s": p.duration, "warmup_s": p.warmup, "smoke": p.smoke,
        "hugepages": not p.no_huge, "cpus": p.cpus, "rules_applied_by": p.rules_by,
        "other_dpdk_processes": [x for x in p.others.split(",") if x],
        "command": p.command,
        "machine": machine,
        "kernel": {"interface": p.kernel_interface, "backend_configured": p.kernel_backend,
                   "twin": runs[0]["twin"] if runs else "", "netns": p.netns,
                   "kernel_rate": rate},
        "flood": {"every": p.kernel_flood, "host_bound_packets_in_private_pcap": flood_pkts,
                  "private_pcap_packets": priv_pkts, "public_pcap_packets": pub_pkts,
                  "share_of_private_pcap": round(expected, 5),
                  # By file sizes; what the worker received is runs[].host_bound_share_of_input
                  # (both ports are read at the same rate, so about half the private share).
                  "share_of_input_pcaps": round(flood_pkts / (priv_pkts + pub_pkts), 5)
                  if priv_pkts + pub_pkts else 0},
        "runs": runs,
        "idle": si, "flooded": sf,
        "ratio_flooded_to_idle": ratio,
        "ratio_flooded_to_idle_per_cpu_second": ratio_pc,
        "bracket_ratios": brackets,
        "bracket_ratio_median": round(statistics.median(brackets), 4) if brackets else None,
        "bracket_ratios_per_cpu_second": brackets_pc,
        "bracket_ratio_per_cpu_second_median":
            round(statistics.median(brackets_pc), 4) if brackets_pc else None,
        "target": {"max_drop": TARGET_MAX_DROP,
                   "met": ratio is not None and ratio >= 1 - TARGET_MAX_DROP},
    }
    if warnings:
        res["warnings"] = warnings
    res["ok"] = not errors
    res["errors"] = errors

    lines = [""]
    lines.append(f"scenario {p.scenario}  conns {p.conns}  workers {workers}  frame {p.frame}  "
                 f"duration {p.duration}s x {len(runs)} runs  "
                 f"{'hugepages' if res['hugepages'] else 'no_huge'}  cpus {p.cpus}")
    lines.append(f"kernel twin {res['kernel']['twin'] or p.kernel_interface} in netns {p.netns}, "
                 f"kernel_rate {rate}/s")
    # Of all input, the share is half that when the worker reads both ports at the same rate
    # (one burst each per loop): the table's "host share" is the measured one.
    lines.append(f"flood: one host-bound datagram after every {p.kernel_flood} replies: "
                 f"{expected:.2%} of the private input (host share: of all input received)")
    lines.append(f"{'run':8} {'NAT Mpps':>9} {'rx Mpps':>8} {'CPU':>5} {'rq wait':>7} {'per CPU-s':>9} {'reply hit':>9} "
                 f"{'req fwd':>8} {'to_kernel/s':>11} {'drops/s':>9} {'twin rx/s':>9} {'host share':>10}")
    for r in runs:
        pc = r["nat_mpps_per_worker_cpu_second"]
        trx = r.get("twin_rx_per_s")
        wait = r.get("worker_runqueue_wait_share")
        lines.append(f"{r['run']:8} {r['nat_mpps']:>9.3f} {r['rx_mpps']:>8.3f} {r['worker_cpu_share']:>5.0%} "
                     f"{'-' if wait is None else f'{wait:.0%}':>7} "
                     f"{pc if pc is not None else 0:>9.3f} {r['reply_hit_ratio']:>9.5f} "
                     f"{r['request_fwd_ratio']:>8.5f} {r['to_kernel_per_s']:>11.0f} "
                     f"{r['kernel_drops_per_s']:>9.0f} {'-' if trx is None else f'{trx:.0f}':>9} "
                     f"{r['host_bound_share_of_input']:>10.4%}")
    for label, s in (("idle", si), ("flooded", sf)):
        if s:
            n, pc = s["nat_mpps"], s["nat_mpps_per_worker_cpu_second"]
            lines.append(f"{label:8} NAT Mpps median {n['median']:.3f} (min {n['min']:.3f}, max {n['max']:.3f}, "
                         f"spread {n['spread'] or 0:.1%})" +
                         (f", per CPU-second median {pc['median']:.3f} (spread {pc['spread'] or 0:.1%})" if pc else ""))
    if ratio is not None:
        lines.append(f"flooded / idle  {ratio:.3f} (medians; per CPU-second {ratio_pc or 0:.3f})  "
                     f"target >= {1 - TARGET_MAX_DROP:.2f}: {'met' if res['target']['met'] else 'MISSED'}")
    if brackets:
        lines.append(f"each flooded run / the idle runs either side: {' '.join(f'{x:.3f}' for x in brackets)}"
                     f" (median {res['bracket_ratio_median']:.3f}; per CPU-second median "
                     f"{res['bracket_ratio_per_cpu_second_median'] or 0:.3f})")
    lines.append(f"results: {p.out}")
    return res, lines
