"""bench.sh's report: the result JSON, its table and the checks that fail a run."""
import os
import re

from .common import load_json, read_text
from .counters import port_deltas, svc_conns, table_conns, window
from .scrape import scrape_lines, scrape_report


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
    if getattr(p, "scrape", 0):
        errors += scrape_report(work, p, res)

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
    if getattr(p, "scrape", 0) and "scrape" in res:
        lines += scrape_lines(res["scrape"])
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

    errors = []
    # Windows: "before"-"after" (no edits, the main result), then "ebefore"-"eafter" (edits),
    # then "pbefore"-"pafter" (no edits again). Without-edits = mean of the two windows around
    # the edits, so a drift of the machine's load does not count as the edits'.
    w1, we, w2 = (window(work, workers, b, a)
                  for b, a in (("before", "after"), ("ebefore", "eafter"), ("pbefore", "pafter")))
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
