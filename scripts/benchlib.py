#!/usr/bin/env python3
"""The computing half of the benchmark scripts (scripts/bench.sh, scripts/bench-latency.sh,
scripts/bench-http.sh): sizes, configuration files, counter arithmetic, the reports and their
checks. The shell scripts run processes and read counters; everything they would otherwise do
with Python pasted into here-documents is a subcommand of this program:

    benchlib.py mempool-size MANIFEST --workers N      -> "TOTAL_PKTS MBUFS MEMORY_MB"
    benchlib.py devargs MANIFEST public|private        -> net_pcap devargs (empty if no files)
    benchlib.py gateway-mac MANIFEST
    benchlib.py neigh MANIFEST                         -> the private port's neighbours (TOML)
    benchlib.py dests MANIFEST                         -> one SERVICE=REAL per line (ctl_edits.py)
    benchlib.py write-config TEMPLATE|- OUT NAME=VALUE...
    benchlib.py table-conns [LISTING.json]             -> connections in an `rvsadm -L -n --json`
    benchlib.py snap-time T0 T1 L0 L1 WORKER_NS        -> the JSON of one counter snapshot's times
    benchlib.py cpu-share NS0 NS1 T0 T1 WORKERS        -> {"cpu_share": X}
    benchlib.py sum NUMBER...
    benchlib.py report ...                             (bench.sh: JSON, table, checks; exit 1 on FAIL)
    benchlib.py latency-row ... / latency-max-pps ROW / latency-report ...   (bench-latency.sh)
    benchlib.py http-report ...                        (bench-http.sh)

Every value comes in as an argument, a file or stdin, never as program text: a quote, a dollar
or a backslash in a path is just a character. The output formats (result JSON, tables) are
those the scripts always wrote; tests/lab_bench*.rs, scripts/plot-bench.py and
docs/benchmarks.md read them. Standard library only. Tests: scripts/tests/test_benchlib.py.
"""
import argparse
import json
import os
import platform
import re
import sys

try:
    import tomllib
except ImportError:  # Python < 3.11: the written config is then not parsed back here
    tomllib = None


def load_json(path):
    with open(path) as f:
        return json.load(f)


def read_text(path, **kw):
    with open(path, **kw) as f:
        return f.read()


def machine_info(proc="/proc"):
    """The machine a result was measured on: CPU model, online CPUs, kernel, load average."""
    with open(os.path.join(proc, "cpuinfo")) as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    return {
        "cpu": cpu,
        "online_cpus": os.cpu_count(), "kernel": platform.release(),
        "loadavg_at_end": read_text(os.path.join(proc, "loadavg")).split()[:3],
    }


# ---- TOML ---------------------------------------------------------------------------------------

def toml_escape(s):
    """The contents of a TOML basic string holding s (without the quotes)."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append("\\u%04X" % o)
        else:
            out.append(ch)
    return "".join(out)


def toml_str(s):
    return '"' + toml_escape(s) + '"'


PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def fill_template(text, values):
    """Replaces every @NAME@ of a config template with values[NAME]. A placeholder inside a
    TOML string (an odd number of quotes before it on its line) gets the value escaped for that
    string; one outside a string gets it as is (numbers, booleans, lists, inline tables). Every
    placeholder outside comments must have a value, and every value a placeholder."""
    used = set()
    for line in text.splitlines():
        used.update(PLACEHOLDER.findall(line.split("#")[0]))
    missing = sorted(used - set(values))
    unknown = sorted(set(values) - used)
    if missing:
        raise ValueError("unfilled placeholder(s): " + ", ".join("@%s@" % n for n in missing))
    if unknown:
        raise ValueError("no placeholder for: " + ", ".join(unknown))
    out = []
    for line in text.splitlines(keepends=True):
        def sub(m, line=line):
            name = m.group(1)
            if name not in values:
                return m.group(0)  # a comment's @NAME@
            v = values[name]
            return toml_escape(v) if line.count('"', 0, m.start()) % 2 else v
        out.append(PLACEHOLDER.sub(sub, line))
    return "".join(out)


# ---- rvs-pcapgen's manifest ---------------------------------------------------------------------

def mempool_size(manifest, workers):
    """Mbufs and EAL memory for a replay: every replayed packet lives in an mbuf for the whole
    run, plus working room per worker."""
    pub = manifest["files"]["public"]
    priv = manifest["files"]["private"]
    pkts = sum(f["packets"] for f in pub + priv)
    mbufs = pkts + 8192 + 4096 * workers
    # ~2.4 KiB per mbuf (2176 B data room + mbuf header + mempool header), plus EAL's own needs.
    mem = (mbufs * 2560 + (1 << 20) - 1) // (1 << 20) + 256
    return pkts, mbufs, mem


def pcap_devargs(files):
    """net_pcap devargs replaying these files forever; empty when there are none."""
    if not files:
        return ""
    return ",".join("rx_pcap=" + f["path"] for f in files) + ",infinite_rx=1"


def neighbours(manifest):
    """The real servers as the body of a TOML inline table: "RIP" = "MAC", ..."""
    return ", ".join(f'{toml_str(s["rip"])} = {toml_str(s["real_mac"])}'
                     for s in manifest["services"])


def edit_dests(manifest):
    """ctl_edits.py's --dest values: SERVICE=REAL of each service of the traffic."""
    return [f'{s["proto"]}:{s["vip"]}:{s["vport"]}={s["rip"]}:{s["rport"]}'
            for s in manifest["services"]]


# ---- counters -----------------------------------------------------------------------------------

def port(s, role):
    return next(p for p in s["ports"] if p["role"] == role)


def drops(p):
    return {k: v for k, v in p["sw"]["drops"]}


def port_deltas(b, a):
    """Per-port counter deltas between two --stats-ports readings b (before) and a (after)."""
    d = {}
    for role in ("public", "private"):
        pb, pa = port(b, role), port(a, role)
        dd = {k: v - drops(pb).get(k, 0) for k, v in drops(pa).items()}
        d[role] = {
            "rx_packets": pa["sw"]["rx_packets"] - pb["sw"]["rx_packets"],
            "tx_packets": pa["sw"]["tx_packets"] - pb["sw"]["tx_packets"],
            "handed_over": pa["sw"]["handed_over"] - pb["sw"]["handed_over"],
            "drops": {k: v for k, v in dd.items() if v},
            "hw_opackets": pa["hw"]["opackets"] - pb["hw"]["opackets"],
        }
    return d


def svc_conns(listing):
    """Connections the services ever created (`rvsadm -L -n --json`, stats.conns)."""
    return sum(s["stats"]["conns"] for s in listing["services"])


def table_conns(listing):
    """Connections in the table now (active + inactive of every real server)."""
    return sum(x["activeconns"] + x["inactconns"] for s in listing["services"] for x in s["dests"])


def snap_time(t0, t1, l0, l1, worker_ns):
    """One snapshot's times (bench.sh snap): "t" when the port counters were read (the middle
    of that request), "tl" when the service counters were (a separate request, tens of ms later
    under load: rates from each are taken over their own window), the requests' durations, and
    the workers' on-CPU nanoseconds."""
    t0, t1, l0, l1 = float(t0), float(t1), float(l0), float(l1)
    return (f'{{"t": {(t0 + t1) / 2}, "read_s": {t1 - t0}, "tl": {(l0 + l1) / 2}, '
            f'"lread_s": {l1 - l0}, "worker_ns": {int(worker_ns)}}}')


def cpu_share(ns0, ns1, t0, t1, workers):
    """Share of the wall time t0..t1 the workers were on a CPU, from their on-CPU ns."""
    return round((int(ns1) - int(ns0)) / 1e9 / (float(t1) - float(t0)) / int(workers), 4)


def number(s):
    """An int if s is one, else a float (what Python source would make of the literal)."""
    try:
        return int(s)
    except ValueError:
        return float(s)


# ---- bench.sh: the report -----------------------------------------------------------------------

def testpmd_rates(txt, warmup, duration):
    """testpmd's "Tx-pps" of both ports at every stats period (--stats-period 1), summed per
    period; the warm-up periods (and the first, partial one) skipped, at most `duration` kept.
    None when no usable period was printed."""
    blocks = re.findall(r"NIC statistics for port (\d+).*?Tx-pps:\s+(\d+)", txt, re.S)
    periods, cur = [], {}
    for p, v in blocks:
        if p in cur:
            periods.append(cur)
            cur = {}
        cur[p] = int(v)
    if cur:
        periods.append(cur)
    usable = [sum(x.values()) for x in periods[warmup + 1:] if len(x) == 2]
    if not usable:
        return None
    return usable[:duration] if len(usable) > duration else usable


def syn_conn_ratio_min(tb, ta, dt, dtl):
    """The least connections-per-SYN rate ratio that checks out. Each counter is read at some
    instant inside its request, so each window's ends are known only to within that request's
    duration (long on a busy machine). The ratio must reach 0.99 less that uncertainty; a broken
    scenario shows as a ratio near 0 or 0.5, so the floor stays at 0.6 however slow the reads."""
    reads = tb["read_s"] + ta["read_s"] + tb.get("lread_s", 0) + ta.get("lread_s", 0)
    uncertainty = reads / min(dt, dtl) if min(dt, dtl) > 0 else 1
    return round(max(0.6, 0.99 - uncertainty), 4)


def bench_report(work, p, machine):
    """The result of one bench.sh run from the counter snapshots in `work`: (result, lines),
    the result as written to the JSON file (res["errors"] lists why the run does not check out)
    and the table printed on stdout. p: the run's parameters (see the report subcommand)."""
    def load(name):
        return load_json(os.path.join(work, name))

    scenario, conns, workers = p.scenario, p.conns, p.workers
    duration, warmup = p.duration, p.warmup
    b, a = load("before-ports.json"), load("after-ports.json")
    tb, ta = load("before-time.json"), load("after-time.json")
    dt = ta["t"] - tb["t"]
    # Share of the wall time the worker threads were on a CPU (1.0 = each owned its core).
    share = (ta["worker_ns"] - tb["worker_ns"]) / 1e9 / dt / workers
    d = port_deltas(b, a)
    lb, la = load("before-list.json"), load("after-list.json")
    new_conns = svc_conns(la) - svc_conns(lb)
    pub, priv = d["public"], d["private"]
    fwd = pub["tx_packets"] + priv["tx_packets"]
    rx = pub["rx_packets"] + priv["rx_packets"]
    mpps = fwd / dt / 1e6
    res = {
        "scenario": scenario, "conns": conns, "workers": workers, "frame": p.frame,
        "steer": p.steer, "reals": p.reals, "acks": p.acks, "rounds": p.rounds,
        "duration_s": round(dt, 3), "warmup_s": warmup, "smoke": p.smoke,
        "hugepages": not p.no_huge, "cpus": p.cpus, "rules_applied_by": p.rules_by,
        "other_dpdk_processes": [x for x in p.others.split(",") if x],
        "command": p.command,
        "machine": machine,
        "rvs": {
            "mpps_forwarded": round(mpps, 4),
            "worker_cpu_share": round(share, 4),
            "mpps_per_worker_cpu_second": round(mpps / share / workers, 4) if share > 0 else None,
            "mpps_received": round(rx / dt / 1e6, 4),
            "forwarded_packets": fwd, "received_packets": rx,
            "public": pub, "private": priv,
            "new_conns": new_conns, "new_conns_per_s": round(new_conns / dt),
            "conns_in_table_end": table_conns(la),
        },
    }
    r = res["rvs"]
    errors = []
    if fwd == 0:
        errors.append("nothing was forwarded")
    if scenario == "syn":
        syns = pub["rx_packets"] / 2
        # Connections per SYN as a ratio of rates, each over the window of its own counters: the
        # service counters are read in a second request, and at millions of SYNs per second the
        # gap between the two reads is worth more than the 1% tolerance in a short window.
        dtl = ta.get("tl", ta["t"]) - tb.get("tl", tb["t"])
        conn_rate = new_conns / dtl if dtl > 0 else 0
        syn_rate = syns / dt if dt > 0 else 0
        r["syn_conn_ratio"] = round(conn_rate / syn_rate, 4) if syn_rate else 0
        r["request_fwd_ratio"] = round(priv["tx_packets"] / pub["rx_packets"], 4) if pub["rx_packets"] else 0
        r["syn_conn_ratio_min"] = syn_conn_ratio_min(tb, ta, dt, dtl)
        if syns and r["syn_conn_ratio"] < r["syn_conn_ratio_min"]:
            errors.append(f"only {new_conns} connections for {syns:.0f} SYNs (rate ratio {r['syn_conn_ratio']}, "
                          f"at least {r['syn_conn_ratio_min']} expected): SYNs do not open connections")
        if r["request_fwd_ratio"] < 0.99:
            errors.append(f"only {priv['tx_packets']} of {pub['rx_packets']} client packets forwarded")
    else:
        hit = pub["tx_packets"] / priv["rx_packets"] if priv["rx_packets"] else 0
        req = priv["tx_packets"] / pub["rx_packets"] if pub["rx_packets"] else 0
        r["reply_hit_ratio"] = round(hit, 5)
        r["request_fwd_ratio"] = round(req, 5)
        # Handover rings overflow when the input outruns the owner cores. Replay input is
        # unbounded (a NIC would drop at RX instead, where nothing is counted against the
        # scenario), so with --steer spray those drops are overload, not misses: judge what
        # reached its owner.
        overload = sum(d[role]["drops"].get("handover_full", 0) for role in ("public", "private"))
        r["overload_drops"] = overload
        if priv["rx_packets"] == 0:
            errors.append("no replies received")
        elif overload:
            eff = fwd / (rx - overload) if rx > overload else 0
            r["fwd_ratio_excluding_overload"] = round(eff, 5)
            res["warnings"] = [f"{overload} packets dropped on full handover rings (overload)"]
            if eff < 0.99:
                errors.append(f"forward ratio {eff:.4f} excluding overload drops: packets miss")
        else:
            if hit < 0.99:
                errors.append(f"reply hit ratio {hit:.4f}: replies miss their connections")
            if req < 0.99:
                errors.append(f"request forward ratio {req:.4f}: client packets are dropped")
        if new_conns > 0.001 * max(pub["rx_packets"], 1):
            errors.append(f"{new_conns} new connections during the measurement: not steady state")

    if p.edits:
        errors += reconfig_report(work, p, res)

    tp = {}
    for mode in p.testpmd_modes:
        txt = read_text(os.path.join(work, f"testpmd-{mode}.log"), errors="replace")
        usable = testpmd_rates(txt, warmup, duration)
        if not usable:
            errors.append(f"testpmd {mode}: no statistics parsed")
            continue
        tp[mode] = {"mpps": round(sum(usable) / len(usable) / 1e6, 4),
                    "samples_mpps": [round(x / 1e6, 3) for x in usable]}
        cpu = os.path.join(work, f"testpmd-{mode}-cpu.json")
        if os.path.exists(cpu):
            c = load_json(cpu)["cpu_share"]
            tp[mode]["worker_cpu_share"] = c
            tp[mode]["mpps_per_worker_cpu_second"] = round(tp[mode]["mpps"] / c / workers, 4) if c > 0 else None
    res["testpmd"] = tp
    res["ratio_to_testpmd"] = {m: round(mpps / v["mpps"], 4) for m, v in tp.items() if v["mpps"] > 0}
    # The same ratio per CPU-second actually run: less sensitive to other tenants taking the cores.
    pc = r["mpps_per_worker_cpu_second"]
    res["ratio_to_testpmd_per_cpu_second"] = {
        m: round(pc / v["mpps_per_worker_cpu_second"], 4)
        for m, v in tp.items() if pc and v.get("mpps_per_worker_cpu_second")}
    for name in ("perf-stat", "perf-report"):
        pf = os.path.join(work, name + ".txt")
        if os.path.exists(pf):
            res[name.replace("-", "_")] = read_text(pf)
    res["ok"] = not errors
    res["errors"] = errors

    lines = [""]
    lines.append(f"scenario {scenario}  conns {conns}  workers {workers}  frame {res['frame']}  "
                 f"duration {dt:.2f}s  {'hugepages' if res['hugepages'] else 'no_huge'}")
    lines.append(f"{'':24} {'public':>14} {'private':>14}")
    for k in ("rx_packets", "tx_packets", "handed_over"):
        lines.append(f"{k:24} {pub[k]:>14} {priv[k]:>14}")
    for role in ("public", "private"):
        for k, v in d[role]["drops"].items():
            lines.append(f"drop {role}.{k:17} {v:>14}")
    lines.append(f"rvs forwarded            {mpps:>10.3f} Mpps   (workers on CPU {share:.0%} of the time)")
    if scenario == "syn":
        lines.append(f"new connections          {r['new_conns_per_s']:>10} /s  (conns/SYN {r['syn_conn_ratio']})")
    else:
        lines.append(f"reply hit ratio          {r['reply_hit_ratio']:>10.5f}")
        lines.append(f"request forward ratio    {r['request_fwd_ratio']:>10.5f}")
        if r.get("overload_drops"):
            lines.append(f"overload (handover full) {r['overload_drops']:>10}   forwarded/(received-overload) "
                         f"{r['fwd_ratio_excluding_overload']:.5f}")
    if p.edits:
        rc = res["reconfig"]
        lines.append(f"with {p.edits} edits/s      {rc['mpps_forwarded']:>10.3f} Mpps   (workers on CPU "
                     f"{rc['worker_cpu_share']:.0%})   vs {rc['mpps_forwarded_without_edits']:.3f} without "
                     f"(windows before and after): {rc['ratio_to_without_edits']:.3f}, "
                     f"per CPU-second {rc['ratio_to_without_edits_per_cpu_second'] or 0:.3f}")
        lines.append(f"edits acknowledged       {rc['edits_acked']:>10}   {rc['edits_per_s_achieved']} /s, "
                     f"{rc['edit_errors']} errors, reply p50 {rc['edit_reply_ms']['p50']} ms "
                     f"p99 {rc['edit_reply_ms']['p99']} ms")
        lines.append(f"existing-conn packets lost {rc['lost_existing_packets']:>8}   (dropped {rc['dropped_packets']}, "
                     f"unaccounted {rc['unaccounted_packets']} vs {rc['unaccounted_packets_without_edits']} "
                     f"without edits; reply hit {rc['reply_hit_ratio']:.6f}, new conns {rc['new_conns']})")
    for m, v in tp.items():
        lines.append(f"testpmd {m:16} {v['mpps']:>10.3f} Mpps   (on CPU {v.get('worker_cpu_share', 0):.0%})   "
                     f"rvs/testpmd {res['ratio_to_testpmd'].get(m, 0):.3f}, "
                     f"per CPU-second {res['ratio_to_testpmd_per_cpu_second'].get(m, 0):.3f}")
    lines.append(f"results: {p.out}")
    return res, lines


# One RX burst per port and worker being processed, plus what waits in TX buffers.
INFLIGHT_PER_WORKER = 256


def reconfig_report(work, p, res):
    """Reconfiguration under load (--edits-per-sec): the window under edits against the windows
    without (same rvs process, same traffic, same length). Sets res["reconfig"] (and maybe
    res["warnings"]); returns the errors. A packet of an existing connection is lost if a drop
    counter moves (any reason but handover_full, which is overload with --steer spray), or if
    it was received and neither forwarded nor counted (beyond what can be in flight inside the
    worker when the counters are read: bounded by inflight_bound)."""
    workers, conns, edits_target = p.workers, p.conns, p.edits

    def load(name):
        return load_json(os.path.join(work, name))

    def lost_of(dd):
        return sum(v for r in ("public", "private") for k, v in dd[r]["drops"].items()
                   if k != "handover_full")

    def over_of(dd):
        return sum(dd[r]["drops"].get("handover_full", 0) for r in ("public", "private"))

    def window(bn, an):
        wb, wa = load(bn + "-ports.json"), load(an + "-ports.json")
        tb_, ta_ = load(bn + "-time.json"), load(an + "-time.json")
        wdt = ta_["t"] - tb_["t"]
        w = {"dt": wdt, "share": (ta_["worker_ns"] - tb_["worker_ns"]) / 1e9 / wdt / workers}
        w.update(port_deltas(wb, wa))
        w["fwd"] = w["public"]["tx_packets"] + w["private"]["tx_packets"]
        w["rx"] = w["public"]["rx_packets"] + w["private"]["rx_packets"]
        w["mpps"] = w["fwd"] / wdt / 1e6
        w["per_cpu"] = w["mpps"] / w["share"] / workers if w["share"] > 0 else None
        w["lost"], w["over"] = lost_of(w), over_of(w)
        w["unacc"] = w["rx"] - w["fwd"] - w["lost"] - w["over"]
        return w

    errors = []
    # Windows: "before"-"after" (no edits, the main result), then "ebefore"-"eafter" (edits),
    # then "pbefore"-"pafter" (no edits again). Without-edits = mean of the two windows around
    # the edits, so a drift of the machine's load does not count as the edits'.
    w1, we, w2 = window("before", "after"), window("ebefore", "eafter"), window("pbefore", "pafter")
    ed = we
    base_mpps = (w1["mpps"] + w2["mpps"]) / 2
    base_pc = (w1["per_cpu"] + w2["per_cpu"]) / 2 if w1["per_cpu"] and w2["per_cpu"] else None
    base_lost = w1["lost"] + w2["lost"]
    inflight_bound = INFLIGHT_PER_WORKER * workers
    elb, ela = load("ebefore-list.json"), load("eafter-list.json")
    client = load("edits.json")
    enew = svc_conns(ela) - svc_conns(elb)
    ehit = ed["public"]["tx_packets"] / ed["private"]["rx_packets"] if ed["private"]["rx_packets"] else 0
    ereq = ed["private"]["tx_packets"] / ed["public"]["rx_packets"] if ed["public"]["rx_packets"] else 0
    epc = round(we["per_cpu"], 4) if we["per_cpu"] else None
    empps = we["mpps"]
    res["reconfig"] = rc = {
        "edits_per_s_target": edits_target,
        "edits_per_s_achieved": client["achieved_per_s"],
        "edits_sent": client["sent"], "edits_acked": client["acked"],
        "edit_errors": client["errors"], "edits_unanswered": client["unanswered"],
        "edit_error_samples": client["error_samples"],
        "edit_reply_ms": client["reply_ms"], "edits_by_cmd": client["by_cmd"],
        "edit_client": client,
        "duration_s": round(we["dt"], 3),
        "mpps_forwarded": round(empps, 4),
        "mpps_forwarded_without_edits": round(base_mpps, 4),
        "mpps_windows_without_edits": [round(w1["mpps"], 4), round(w2["mpps"], 4)],
        "ratio_to_without_edits": round(empps / base_mpps, 4) if base_mpps else None,
        "worker_cpu_share": round(we["share"], 4),
        "worker_cpu_share_without_edits": [round(w1["share"], 4), round(w2["share"], 4)],
        "mpps_per_worker_cpu_second": epc,
        "mpps_per_worker_cpu_second_without_edits": round(base_pc, 4) if base_pc else None,
        "ratio_to_without_edits_per_cpu_second":
            round(epc / base_pc, 4) if epc and base_pc else None,
        "forwarded_packets": we["fwd"], "received_packets": we["rx"],
        "public": ed["public"], "private": ed["private"],
        "reply_hit_ratio": round(ehit, 6), "request_fwd_ratio": round(ereq, 6),
        "new_conns": enew, "conns_in_table_end": table_conns(ela),
        "lost_existing_packets": we["lost"] + max(0, we["unacc"] - inflight_bound),
        "dropped_packets": we["lost"], "overload_drops": we["over"],
        "unaccounted_packets": we["unacc"],
        "unaccounted_packets_without_edits": [w1["unacc"], w2["unacc"]],
        "dropped_packets_without_edits": base_lost,
        "inflight_bound": inflight_bound,
    }
    if we["lost"]:
        errors.append(f"{we['lost']} packets of existing connections dropped during the edits "
                      f"({ed['public']['drops']} public, {ed['private']['drops']} private)")
    if abs(we["unacc"]) > inflight_bound:
        errors.append(f"{we['unacc']} packets received during the edits were neither forwarded nor "
                      f"dropped (more than the {inflight_bound} that can be in flight)")
    if enew > 0:
        errors.append(f"{enew} new connections during the edits: existing connections lost their entries")
    if rc["conns_in_table_end"] < conns:
        errors.append(f"{rc['conns_in_table_end']} of {conns} connections left after the edits")
    if client["errors"] or client["unanswered"]:
        errors.append(f"{client['errors']} edits refused, {client['unanswered']} unanswered: "
                      f"{client['error_samples']}")
    if client["achieved_per_s"] < 0.95 * edits_target:
        # A rate, so a property of the machine as much as of rvs: --smoke (shared CI machines)
        # checks that edits were made and lost nothing, and only warns about the rate.
        slow = (f"only {client['achieved_per_s']} edits/s of the {edits_target} asked "
                f"(reply p99 {client['reply_ms']['p99']} ms): the control plane did not keep up")
        (res.setdefault("warnings", []) if p.smoke else errors).append(slow)
    if we["fwd"] == 0:
        errors.append("nothing was forwarded during the edits")
    return errors


def write_result(path, res, indent):
    with open(path, "w") as f:
        json.dump(res, f, indent=indent)


# ---- bench-latency.sh ---------------------------------------------------------------------------

def latency_row(a, b, dur, rate, gen, preempted):
    """One bench-latency.sh run from the --stats-ports readings a (before) and b (after) the
    window of dur seconds: rates, drops, and percentiles of rvs's residence-time histogram."""
    def tot(r, k):
        return sum(p["sw"][k] for p in r["ports"])
    rx = tot(b, "rx_packets") - tot(a, "rx_packets")
    tx = tot(b, "tx_packets") - tot(a, "tx_packets")
    ndrops = sum(n for p in b["ports"] for _, n in p["sw"]["drops"]) - \
        sum(n for p in a["ports"] for _, n in p["sw"]["drops"])
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
    return {"rate_asked": rate, "rx_pps": rx / dur, "tx_pps": tx / dur, "drops": ndrops,
            "drops_by_reason": by_reason, "worker_preempted": preempted,
            "samples": total, "p50_ns": q(0.5), "p99_ns": q(0.99), "p999_ns": q(0.999),
            "max_ns": win[-1][0] if win else 0.0, "generator": gen}


def last_json_line(text):
    """rvs-pktgen's summary: the last line of its stdout."""
    return json.loads(text.strip().splitlines()[-1])


def latency_report(rows, conns, loads, smoke, command, machine):
    """bench-latency.sh's result: (result, table lines, warnings). rows: the unpaced run, then
    one per load of `loads` ("10,50,90"). conns stays the string it was given (as always)."""
    fr = [None] + [int(x) for x in loads.split(",")]
    ok, why, warnings = True, [], []
    lines = [""]
    lines.append(f"{'load':>6} {'offered pps':>12} {'forwarded pps':>14} {'lost':>8} {'samples':>8} {'p50 ns':>8} {'p99 ns':>8} {'p99.9 ns':>9} {'max ns':>9} {'preempted':>9}")
    for f, r in zip(fr, rows):
        offered = r["generator"]["sent_pps"]
        # Lost inside rvs during the window: every drop counter (TX ring full included).
        lost = r["drops"]
        r["load_percent"] = f
        r["lost"] = lost
        name = "max" if f is None else str(f) + "%"
        lines.append(f"{name:>6} {offered:>12.0f} {r['tx_pps']:>14.0f} {lost:>8} {r['samples']:>8} {r['p50_ns']:>8.0f} {r['p99_ns']:>8.0f} {r['p999_ns']:>9.0f} {r['max_ns']:>9.0f} {r['worker_preempted']:>9}")
        if r["tx_pps"] <= 0 or r["samples"] == 0:
            ok = False
            why.append(f"{name} load: nothing forwarded or no latency samples")
        if f is not None:
            # A paced run that lost packets or could not offer its load is not the load it
            # claims. --smoke only checks the machinery (CI machines are shared): warn instead.
            bad = warnings if smoke else why
            if lost > 0:
                bad.append(f"{f}% load: rvs dropped {lost} packets {r['drops_by_reason']}")
            if r["generator"]["sent_pps"] < 0.95 * r["rate_asked"]:
                bad.append(f"{f}% load: the generator offered only {r['generator']['sent_pps']:.0f} of {r['rate_asked']} pps (CPU contention?)")
    ok = ok and not why
    res = {"ok": ok, "why": why, "warnings": warnings, "conns": conns, "command": command,
           "machine": machine, "runs": rows}
    return res, lines, warnings


# ---- bench-http.sh ------------------------------------------------------------------------------

HTTP_LABEL = {"rvs": "rvs (DPDK af_packet, rr)", "kernel": "kernel (nftables DNAT, numgen inc)"}


def http_side(wrk_text, cpu_before, cpu_after):
    """One side of bench-http.sh: count.lua's WRKJSON summary with requests/s and the machine's
    CPU split (cpu_stat lines: user, system, idle, irq+softirq, total) over the run."""
    w = json.loads(re.search(r"^WRKJSON (.*)$", wrk_text, re.M).group(1))
    c0 = [int(x) for x in cpu_before.split()]
    c1 = [int(x) for x in cpu_after.split()]
    d = [b - a for a, b in zip(c0, c1)]
    total = d[4] or 1
    w["requests_per_s"] = round(w["requests"] / (w["duration_us"] / 1e6), 1)
    w["cpu"] = {"user": round(d[0] / total, 3), "system": round(d[1] / total, 3),
                "idle": round(d[2] / total, 3), "irq_softirq": round(d[3] / total, 3)}
    w["wrk_output"] = wrk_text
    return w


def http_errors(s, w):
    """Why one side does not check out."""
    errors = []
    e = w["errors"]
    sock = e["connect"] + e["read"] + e["write"] + e["timeout"]
    if sock:
        errors.append(f"{s}: socket errors {e}")
    if e["status"] or w["non_2xx"]:
        errors.append(f"{s}: {max(e['status'], w['non_2xx'])} non-2xx answers")
    if w["by_rs"]["other"]:
        errors.append(f"{s}: {w['by_rs']['other']} answers from neither real server")
    if not w["by_rs"]["RS1"] or not w["by_rs"]["RS2"]:
        errors.append(f"{s}: not both real servers answered {w['by_rs']}")
    if w["requests"] == 0:
        errors.append(f"{s}: no requests completed")
    return errors


def http_report(work, sides, p, machine):
    """bench-http.sh's result from its scratch directory: (result, table lines)."""
    url = f"http://{p.vip}/"
    res = {
        "command": p.command, "duration_s": p.duration, "warmup_s": p.warmup, "threads": p.threads,
        "connections": p.connections, "timeout_s": p.timeout, "url": url,
        "machine": machine,
        "sides": {},
    }
    errors = []
    for s in sides:
        w = http_side(read_text(os.path.join(work, f"wrk-{s}.txt")),
                      read_text(os.path.join(work, f"cpu-{s}-before")),
                      read_text(os.path.join(work, f"cpu-{s}-after")))
        res["sides"][s] = w
        errors += http_errors(s, w)
    if "rvs" in res["sides"]:
        res["sides"]["rvs"]["rvsadm_list_stats"] = read_text(os.path.join(work, "rvs-list.txt"))
    if "kernel" in res["sides"]:
        res["sides"]["kernel"]["nft_ruleset"] = read_text(os.path.join(work, "kernel-ruleset.txt"))
    if len(res["sides"]) == 2:
        r, k = res["sides"]["rvs"], res["sides"]["kernel"]
        res["rvs_over_kernel"] = {
            "requests_per_s": round(r["requests_per_s"] / k["requests_per_s"], 3) if k["requests_per_s"] else None,
            "latency_p50": round(r["latency_us"]["p50"] / k["latency_us"]["p50"], 3) if k["latency_us"]["p50"] else None,
            "latency_p99": round(r["latency_us"]["p99"] / k["latency_us"]["p99"], 3) if k["latency_us"]["p99"] else None,
        }
    res["ok"] = not errors
    res["errors"] = errors

    cols = [s for s in ("rvs", "kernel") if s in res["sides"]]
    W = 36
    lines = [""]
    lines.append(f"HTTP GET {url} from netns rvs-client: wrk -t{p.threads} -c{p.connections} -d{p.duration}s, "
                 f"round robin over RS1/RS2")
    lines.append(f"{'':26}" + "".join(f"{HTTP_LABEL[s]:>{W}}" for s in cols))

    def row(name, f):
        lines.append(f"{name:26}" + "".join(f"{f(res['sides'][s]):>{W}}" for s in cols))

    def ms(us):
        return f"{us / 1000:.2f} ms"
    row("requests/s", lambda w: f"{w['requests_per_s']:.0f}")
    row("requests", lambda w: str(w["requests"]))
    row("latency p50", lambda w: ms(w["latency_us"]["p50"]))
    row("latency p90", lambda w: ms(w["latency_us"]["p90"]))
    row("latency p99", lambda w: ms(w["latency_us"]["p99"]))
    row("latency max", lambda w: ms(w["latency_us"]["max"]))
    row("socket errors c/r/w/t", lambda w: "{connect}/{read}/{write}/{timeout}".format(**w["errors"]))
    row("non-2xx", lambda w: str(max(w["errors"]["status"], w["non_2xx"])))
    row("answers RS1 / RS2", lambda w: f"{w['by_rs']['RS1']} / {w['by_rs']['RS2']}")
    row("CPU busy (all CPUs)", lambda w: f"{1 - w['cpu']['idle']:.0%} (softirq {w['cpu']['irq_softirq']:.0%})")
    if "rvs_over_kernel" in res:
        x = res["rvs_over_kernel"]
        lines.append(f"rvs / kernel: requests/s {x['requests_per_s']}, latency p50 {x['latency_p50']}, p99 {x['latency_p99']}")
    lines.append(f"results: {p.out}")
    return res, lines


# ---- command line -------------------------------------------------------------------------------

def cmd_mempool_size(a):
    print(*mempool_size(load_json(a.manifest), a.workers))


def cmd_devargs(a):
    print(pcap_devargs(load_json(a.manifest)["files"][a.role]))


def cmd_gateway_mac(a):
    print(load_json(a.manifest)["gateway_mac"])


def cmd_neigh(a):
    print(neighbours(load_json(a.manifest)))


def cmd_dests(a):
    for d in edit_dests(load_json(a.manifest)):
        print(d)


def cmd_write_config(a):
    values = {}
    for kv in a.values:
        name, sep, v = kv.partition("=")
        if not sep or not PLACEHOLDER.fullmatch("@" + name + "@"):
            raise SystemExit(f"benchlib: write-config: expected NAME=VALUE, got {kv!r}")
        values[name] = v
    text = sys.stdin.read() if a.template == "-" else read_text(a.template)
    try:
        t = fill_template(text, values)
    except ValueError as e:
        raise SystemExit(f"benchlib: write-config {a.template}: {e}")
    if tomllib is not None:
        try:
            tomllib.loads(t)
        except tomllib.TOMLDecodeError as e:
            raise SystemExit(f"benchlib: write-config: {a.out} would not be valid TOML: {e}")
    with open(a.out, "w") as f:
        f.write(t)


def cmd_table_conns(a):
    listing = json.load(sys.stdin) if a.listing in (None, "-") else load_json(a.listing)
    print(table_conns(listing))


def cmd_snap_time(a):
    print(snap_time(a.t0, a.t1, a.l0, a.l1, a.worker_ns))


def cmd_cpu_share(a):
    print(f'{{"cpu_share": {cpu_share(a.ns0, a.ns1, a.t0, a.t1, a.workers)}}}')


def cmd_sum(a):
    print(sum(number(x) for x in a.numbers))


def cmd_report(a):
    a.testpmd_modes = a.testpmd_modes.split()
    res, lines = bench_report(a.work, a, machine_info())
    write_result(a.out, res, 2)
    for line in lines:
        print(line)
    if res["errors"]:
        for e in res["errors"]:
            print(f"bench: FAIL: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_latency_row(a):
    row = latency_row(load_json(a.before), load_json(a.after), float(a.duration), int(a.rate),
                      last_json_line(read_text(a.generator)), int(a.preempted or 0))
    print(json.dumps(row))


def cmd_latency_max_pps(a):
    print(int(load_json(a.row)["tx_pps"]))


def cmd_latency_report(a):
    rows = [load_json(f) for f in a.rows]
    res, lines, warnings = latency_report(rows, a.conns, a.loads, a.smoke, a.command,
                                          platform.node())
    for line in lines:
        print(line)
    for w in warnings:
        print("bench-latency: warning: " + w, file=sys.stderr)
    write_result(a.out, res, 1)
    print(f"\nresults: {a.out}")
    if not res["ok"]:
        print("bench-latency: FAIL: " + "; ".join(res["why"]), file=sys.stderr)
        return 1
    return 0


def cmd_http_report(a):
    res, lines = http_report(a.work, a.sides, a, machine_info())
    write_result(a.out, res, 2)
    for line in lines:
        print(line)
    for e in res["errors"]:
        print(f"bench-http: FAIL: {e}", file=sys.stderr)
    return 1 if res["errors"] else 0


def flag(s):
    """A shell 0/1 (or true/false) switch."""
    if s in ("1", "true"):
        return True
    if s in ("0", "false", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected 0/1 or true/false, got {s!r}")


def parser():
    ap = argparse.ArgumentParser(prog="benchlib.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add(name, func, help):
        s = sub.add_parser(name, help=help, description=help)
        s.set_defaults(func=func)
        return s

    s = add("mempool-size", cmd_mempool_size, "packets, mbufs and EAL MiB for a replay")
    s.add_argument("manifest")
    s.add_argument("--workers", type=int, required=True)
    s = add("devargs", cmd_devargs, "net_pcap devargs replaying one port's files")
    s.add_argument("manifest")
    s.add_argument("role", choices=("public", "private"))
    s = add("gateway-mac", cmd_gateway_mac, "the gateway's MAC of the traffic")
    s.add_argument("manifest")
    s = add("neigh", cmd_neigh, "the real servers as a TOML inline table's body")
    s.add_argument("manifest")
    s = add("dests", cmd_dests, "ctl_edits.py --dest values, one per line")
    s.add_argument("manifest")
    s = add("write-config", cmd_write_config, "fill a config template's @NAME@ placeholders")
    s.add_argument("template", help="the template file, or - for stdin")
    s.add_argument("out")
    s.add_argument("values", nargs="*", metavar="NAME=VALUE")
    s = add("table-conns", cmd_table_conns, "connections in the table of an rvsadm -L -n --json")
    s.add_argument("listing", nargs="?", help="default: stdin")
    s = add("snap-time", cmd_snap_time, "the times of one counter snapshot, as JSON")
    for n in ("t0", "t1", "l0", "l1", "worker_ns"):
        s.add_argument(n)
    s = add("cpu-share", cmd_cpu_share, "workers' on-CPU share over a window, as JSON")
    for n in ("ns0", "ns1", "t0", "t1", "workers"):
        s.add_argument(n)
    s = add("sum", cmd_sum, "the sum of numbers")
    s.add_argument("numbers", nargs="+")

    s = add("report", cmd_report, "bench.sh's result JSON, table and checks")
    s.add_argument("--work", required=True, help="the scratch directory with the snapshots")
    s.add_argument("--out", required=True)
    s.add_argument("--scenario", required=True)
    for n in ("conns", "workers", "duration", "warmup", "reals", "acks", "rounds"):
        s.add_argument("--" + n, type=int, required=True)
    s.add_argument("--edits", type=int, default=0)
    s.add_argument("--frame", required=True)
    s.add_argument("--steer", required=True)
    s.add_argument("--smoke", type=flag, default=False)
    s.add_argument("--no-huge", type=flag, default=False)
    s.add_argument("--cpus", required=True)
    s.add_argument("--rules-by", required=True)
    s.add_argument("--others", default="", help="comma-separated pids")
    s.add_argument("--command", default="")
    s.add_argument("--testpmd-modes", default="", help="space-separated modes that ran")

    s = add("latency-row", cmd_latency_row, "one bench-latency.sh run, as a JSON line")
    s.add_argument("--before", required=True)
    s.add_argument("--after", required=True)
    s.add_argument("--duration", required=True)
    s.add_argument("--rate", required=True)
    s.add_argument("--generator", required=True, help="rvs-pktgen's stdout")
    s.add_argument("--preempted", default="0")
    s = add("latency-max-pps", cmd_latency_max_pps, "the forwarded pps of a latency row")
    s.add_argument("row")
    s = add("latency-report", cmd_latency_report, "bench-latency.sh's table, JSON and checks")
    s.add_argument("--out", required=True)
    s.add_argument("--conns", required=True)
    s.add_argument("--loads", required=True)
    s.add_argument("--smoke", type=flag, default=False)
    s.add_argument("--command", default="")
    s.add_argument("rows", nargs="+", help="row files: the unpaced run, then one per load")

    s = add("http-report", cmd_http_report, "bench-http.sh's table, JSON and checks")
    s.add_argument("--work", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--command", default="")
    s.add_argument("--vip", required=True)
    for n in ("duration", "warmup", "threads", "connections", "timeout"):
        s.add_argument("--" + n, type=int, required=True)
    s.add_argument("sides", nargs="*")
    return ap


def main(argv=None):
    a = parser().parse_args(argv)
    return a.func(a) or 0


if __name__ == "__main__":
    sys.exit(main())
