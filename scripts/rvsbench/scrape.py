"""bench.sh --scrape-every: forwarding while Prometheus scrapes rvs's /metrics, against the
windows without (same rvs process, same traffic, same length), with many services in the
table so that each scrape has something to read and encode."""
import ipaddress
import json
import math
import os
import urllib.parse
import urllib.request

from .common import load_json
from .counters import window


def extra_services(n, reals):
    """Rules-file lines (rvsadm -R) for n services on 10.1.0.0/16 port 80, each with `reals`
    real servers on 10.2.0.0/16: services no traffic reaches, for the scrapes to list."""
    lines = []
    vip0 = int(ipaddress.IPv4Address("10.1.0.1"))
    rip0 = int(ipaddress.IPv4Address("10.2.0.1"))
    for i in range(n):
        vip = ipaddress.IPv4Address(vip0 + i)
        lines.append(f"-A -t {vip}:80 -s wrr")
        for j in range(reals):
            rip = ipaddress.IPv4Address(rip0 + i * reals + j)
            lines.append(f"-a -t {vip}:80 -r {rip}:80 -m -w 1")
    return lines


def prom_query(base, query):
    """The value of an instant query's first sample (nan when there is none)."""
    url = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as r:
        v = json.load(r)
    res = v.get("data", {}).get("result", [])
    return float(res[0]["value"][1]) if res else math.nan


def scrape_report(work, p, res):
    """Sets res["scrape"]; returns the errors. The scraped window's Mpps against the mean of
    the windows before and after it, and what Prometheus recorded about the scrapes."""
    w1, ws, w2 = (window(work, p.workers, b, a)
                  for b, a in (("before", "after"), ("sbefore", "safter"), ("pbefore", "pafter")))
    base = (w1["mpps"] + w2["mpps"]) / 2
    prom = load_json(os.path.join(work, "scrape.json"))
    r = {
        "scrape_every_s": p.scrape,
        "services_listed": prom.get("services"),
        "mpps_forwarded_scraped": round(ws["mpps"], 4),
        "mpps_windows_without": [round(w1["mpps"], 4), round(w2["mpps"], 4)],
        "ratio_to_without": round(ws["mpps"] / base, 4) if base else None,
        "worker_cpu_share": round(ws["share"], 4),
        "worker_cpu_share_without": [round(w1["share"], 4), round(w2["share"], 4)],
        "packets_lost_scraped": ws["lost"],
        "prometheus": prom,
    }
    res["scrape"] = r
    errors = []
    if not prom.get("scrapes") or prom["scrapes"] < 0.8 * p.duration / p.scrape:
        errors.append(f"Prometheus recorded {prom.get('scrapes')} scrapes in the window "
                      f"(every {p.scrape} s for {p.duration} s)")
    if prom.get("up_min") != 1:
        errors.append("a scrape failed (up was not 1 throughout the window)")
    if ws["lost"]:
        errors.append(f"{ws['lost']} packets dropped while scraping")
    return errors


def scrape_lines(r):
    """The report's lines for the scraped window."""
    pr = r["prometheus"]
    return [
        f"scraped every {r['scrape_every_s']} s     {r['mpps_forwarded_scraped']:>10.3f} Mpps   "
        f"vs {sum(r['mpps_windows_without']) / 2:.3f} without (windows before and after): "
        f"{r['ratio_to_without']:.3f}",
        f"scrapes                  {pr['scrapes']:>10}   {r['services_listed']} services, "
        f"{pr['samples']:.0f} samples each, duration avg {pr['duration_avg_s'] * 1e3:.1f} ms "
        f"max {pr['duration_max_s'] * 1e3:.1f} ms",
    ]
