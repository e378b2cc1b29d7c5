"""bench-http.sh: wrk's summary and CPU split per side, their checks, rvs against the kernel."""
import json
import os
import re

from .common import read_text


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
