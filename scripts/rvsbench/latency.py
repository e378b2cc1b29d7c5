"""bench-latency.sh: one run's rates and latency percentiles, and the report over the loads."""
import json


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
