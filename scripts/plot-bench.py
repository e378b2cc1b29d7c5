#!/usr/bin/env python3
"""Plots forwarding rate against concurrent connections from scripts/bench.sh results, as a
self-contained SVG (no third-party modules: the SVG is written by hand).

    scripts/plot-bench.py [--out docs/img/mpps-vs-conns.svg] [--scenario established-udp]
                          [--workers 1] [--frame 64] [FILE.json | DIR ...]

Inputs are bench.sh JSON files, or directories of them (default: bench-results/). Runs that did
not check out ("ok": false), --smoke runs, and runs of another scenario, worker count, frame or
steering are left out; when several runs share a connection count, one that includes the
testpmd references is preferred, then the newest (by the time stamp in its name). Two panels:
Mpps forwarded (wall clock), and Mpps per second of worker CPU time (bench.sh's correction for
a shared machine); each with rvs and, when the runs included them, dpdk-testpmd io and 5tswap
replaying the same files. The x axis (connections) is logarithmic. `scripts/bench.sh --sweep` runs a sweep and calls this.
"""
import argparse
import glob
import html
import json
import math
import os
import sys

SERIES = [  # key, label, colour, dash
    ("rvs", "rvs", "#c0392b", ""),
    ("io", "dpdk-testpmd io", "#2471a3", "6,4"),
    ("5tswap", "dpdk-testpmd 5tswap", "#239b56", "2,3"),
]


def load(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(glob.glob(os.path.join(p, "*.json")))
        else:
            files.append(p)
    runs = []
    for f in files:
        try:
            r = json.load(open(f))
        except (OSError, ValueError) as e:
            print(f"plot-bench: skipping {f}: {e}", file=sys.stderr)
            continue
        if not isinstance(r, dict) or "rvs" not in r or "conns" not in r:
            continue
        r["_file"] = f
        runs.append(r)
    return runs


def pick(runs, a):
    keep = {}
    for r in runs:
        why = None
        if not r.get("ok"):
            why = "did not check out"
        elif r.get("smoke"):
            why = "smoke run"
        elif r.get("scenario") != a.scenario:
            why = f"scenario {r.get('scenario')}"
        elif r.get("workers") != a.workers:
            why = f"{r.get('workers')} workers"
        elif str(r.get("frame")) != a.frame:
            why = f"frame {r.get('frame')}"
        elif r.get("steer", "owner") != a.steer:
            why = f"steer {r.get('steer')}"
        if why:
            if a.verbose:
                print(f"plot-bench: leaving out {r['_file']}: {why}", file=sys.stderr)
            continue
        c = r["conns"]
        # A run with the testpmd references wins over one without; then the newest (file names
        # end in the UTC time stamp of the run).
        rank = (bool(r.get("testpmd")), os.path.basename(r["_file"]))
        if c not in keep or rank > (bool(keep[c].get("testpmd")), os.path.basename(keep[c]["_file"])):
            keep[c] = r
    return [keep[c] for c in sorted(keep)]


def values(runs, per_cpu):
    out = {k: [] for k, *_ in SERIES}
    for r in runs:
        c = r["conns"]
        v = r["rvs"].get("mpps_per_worker_cpu_second") if per_cpu else r["rvs"].get("mpps_forwarded")
        if v:
            out["rvs"].append((c, v))
        for m in ("io", "5tswap"):
            t = r.get("testpmd", {}).get(m)
            if not t:
                continue
            v = t.get("mpps_per_worker_cpu_second") if per_cpu else t.get("mpps")
            if v:
                out[m].append((c, v))
    return out


def nice_step(span, n=5):
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def conns_label(c):
    for unit, div in (("M", 1 << 20), ("k", 1 << 10)):
        if c >= div and c % div == 0:
            return f"{c // div}{unit}"
    if c >= 1_000_000 and c % 1_000_000 == 0:
        return f"{c // 1_000_000}M"
    if c >= 1000 and c % 1000 == 0:
        return f"{c // 1000}k"
    return str(c)


def fmt(v):
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def log_ticks(lo, hi):
    """1-2-5 ticks covering [lo, hi]."""
    out = []
    e = math.floor(math.log10(lo))
    while True:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if v > hi * 1.0001:
                return out
            if v >= lo * 0.9999:
                out.append(v)
        e += 1


def panel(x0, y0, w, h, title, data, xs, xmin, xmax, ymin, ymax, svg):
    """One chart, log-log: axes, grid, series. (x0, y0) is the top-left of the plot area."""
    lx0, lx1 = math.log2(xmin), math.log2(xmax)
    ly0, ly1 = math.log10(ymin), math.log10(ymax)

    def X(c):
        return x0 + (math.log2(c) - lx0) / (lx1 - lx0) * w

    def Y(v):
        return y0 + h - (math.log10(v) - ly0) / (ly1 - ly0) * h

    svg.append(f'<text x="{x0 + w / 2:.1f}" y="{y0 - 12}" class="ptitle">{html.escape(title)}</text>')
    for v in log_ticks(ymin, ymax):
        y = Y(v)
        svg.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" class="grid"/>')
        svg.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" class="ylab">{v:g}</text>')
    # x ticks at the measured connection counts.
    for c in xs:
        x = X(c)
        svg.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + h}" class="grid"/>')
        svg.append(f'<text x="{x:.1f}" y="{y0 + h + 16}" class="xlab">{conns_label(c)}</text>')
    svg.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" class="frame"/>')
    svg.append(f'<text x="{x0 + w / 2:.1f}" y="{y0 + h + 36}" class="axis">concurrent connections (log scale)</text>')
    svg.append(f'<text transform="translate({x0 - 42},{y0 + h / 2:.1f}) rotate(-90)" class="axis">Mpps (log scale)</text>')
    for key, label, colour, dash in SERIES:
        pts = data.get(key) or []
        if not pts:
            continue
        d = " ".join(f"{'M' if i == 0 else 'L'}{X(c):.1f},{Y(v):.1f}" for i, (c, v) in enumerate(pts))
        da = f' stroke-dasharray="{dash}"' if dash else ""
        svg.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"{da}/>')
        for c, v in pts:
            svg.append(f'<circle cx="{X(c):.1f}" cy="{Y(v):.1f}" r="3.5" fill="{colour}">'
                       f'<title>{html.escape(label)}: {v:.3f} Mpps at {c} connections</title></circle>')
            if key == "rvs":  # the others are in the table below the charts
                svg.append(f'<text x="{X(c):.1f}" y="{Y(v) + 16:.1f}" class="val" '
                           f'text-anchor="middle" fill="{colour}">{fmt(v)}</text>')


def table(x0, y0, runs, wall, cpu, svg):
    """The numbers, one column per connection count."""
    cols = [r["conns"] for r in runs]
    cw, lw = 88, 250
    svg.append(f'<text x="{x0}" y="{y0}" class="th">Mpps (wall / per worker CPU-second)</text>')
    for i, c in enumerate(cols):
        svg.append(f'<text x="{x0 + lw + cw * i + cw / 2}" y="{y0}" class="th" text-anchor="middle">'
                   f'{conns_label(c)}</text>')
    rows = [(label, colour, dict(wall.get(key, [])), dict(cpu.get(key, [])))
            for key, label, colour, _ in SERIES if wall.get(key)]
    ratio_rows = []
    if wall.get("5tswap"):
        w5, c5 = dict(wall["5tswap"]), dict(cpu["5tswap"])
        wr, cr = dict(wall["rvs"]), dict(cpu["rvs"])
        ratio_rows.append(("rvs / 5tswap", "#333",
                           {c: wr[c] / w5[c] for c in wr if c in w5 and w5[c]},
                           {c: cr[c] / c5[c] for c in cr if c in c5 and c5[c]}))
    for j, (label, colour, w, cp) in enumerate(rows + ratio_rows):
        y = y0 + 17 * (j + 1)
        svg.append(f'<text x="{x0}" y="{y}" class="td" fill="{colour}">{html.escape(label)}</text>')
        for i, c in enumerate(cols):
            if c in w:
                txt = f"{w[c]:.2f} / {cp[c]:.2f}" if c in cp else f"{w[c]:.2f}"
                svg.append(f'<text x="{x0 + lw + cw * i + cw / 2}" y="{y}" class="td" '
                           f'text-anchor="middle">{txt}</text>')
    return y0 + 17 * (len(rows) + len(ratio_rows) + 1)


def render(runs, a):
    wall = values(runs, False)
    cpu = values(runs, True)
    conns = [r["conns"] for r in runs]
    xmin, xmax = min(conns) / 1.5, max(conns) * 1.5
    allv = [v for d in (wall, cpu) for s in d.values() for _, v in s] or [1.0]
    ymin = 10 ** math.floor(math.log10(min(allv) / 1.2))
    ymax = 10 ** math.ceil(math.log10(max(allv) * 1.2))
    nser = sum(1 for k, *_ in SERIES if wall.get(k)) + (1 if wall.get("5tswap") else 0)
    W = 1000
    pw, ph = 380, 300
    H = 120 + ph + 60 + 20 + 17 * (nser + 1) + 70
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
           "<style>"
           ".grid{stroke:#e3e3e3;stroke-width:1}.frame{fill:none;stroke:#555;stroke-width:1}"
           ".ylab{font-size:11px;text-anchor:end;fill:#333}.xlab{font-size:11px;text-anchor:middle;fill:#333}"
           ".axis{font-size:12px;text-anchor:middle;fill:#222}.ptitle{font-size:13px;text-anchor:middle;font-weight:bold;fill:#222}"
           ".title{font-size:16px;font-weight:bold;fill:#111}.sub{font-size:11px;fill:#444}"
           ".val{font-size:10px}.leg{font-size:12px;fill:#222}.note{font-size:10px;fill:#555}"
           ".th{font-size:11px;font-weight:bold;fill:#222}.td{font-size:11px;fill:#222}"
           "</style>",
           f'<rect width="{W}" height="{H}" fill="white"/>']
    r0 = runs[0]
    svg.append(f'<text x="20" y="28" class="title">{html.escape(a.title)}</text>')
    m = r0.get("machine", {})
    sub = (f"scenario {r0['scenario']}, {r0['workers']} worker(s), {r0['frame']}-byte frames, "
           f"{r0.get('duration_s', 0):.0f} s windows, {'hugepages' if r0.get('hugepages') else 'no_huge'}; "
           f"{m.get('cpu', '?')}, {m.get('online_cpus', '?')} CPUs, shared machine")
    svg.append(f'<text x="20" y="48" class="sub">{html.escape(sub)}</text>')
    panel(80, 120, pw, ph, "Mpps forwarded (wall clock)", wall, conns, xmin, xmax, ymin, ymax, svg)
    panel(80 + pw + 120, 120, pw, ph, "Mpps per second of worker CPU time", cpu, conns, xmin, xmax,
          ymin, ymax, svg)
    # Legend, under the subtitle.
    lx, ly = 20, 74
    for key, label, colour, dash in SERIES:
        if not wall.get(key):
            continue
        da = f' stroke-dasharray="{dash}"' if dash else ""
        svg.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 30}" y2="{ly}" stroke="{colour}" stroke-width="2"{da}/>')
        svg.append(f'<circle cx="{lx + 15}" cy="{ly}" r="3.5" fill="{colour}"/>')
        svg.append(f'<text x="{lx + 38}" y="{ly + 4}" class="leg">{html.escape(label)}</text>')
        lx += 60 + 7 * len(label)
    ty = table(20, 120 + ph + 70, runs, wall, cpu, svg)
    notes = ("dpdk-testpmd replays the same pcap files on the same cores (io: forwards untouched; "
             "5tswap: swaps L2-L4 addresses). Every figure includes the replay's own cost (net_pcap "
             "infinite_rx copies each packet from a cold mbuf). Runs: "
             + ", ".join(os.path.basename(r["_file"]).rsplit("-", 1)[-1].replace(".json", "")
                         + f" ({conns_label(r['conns'])})" for r in runs)
             + ". Command: " + r0.get("command", "?").split(" --conns")[0])
    lines, cur = [], ""
    for word in notes.split(" "):
        if len(cur) + len(word) > 175:
            lines.append(cur)
            cur = ""
        cur += ("" if not cur else " ") + word
    lines.append(cur)
    for i, n in enumerate(lines[:4]):
        svg.append(f'<text x="20" y="{ty + 12 + 15 * i}" class="note">{html.escape(n)}</text>')
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="*", default=["bench-results"])
    ap.add_argument("--out", default="docs/img/mpps-vs-conns.svg")
    ap.add_argument("--scenario", default=None,
                    help="default: the scenario of the inputs (established-udp if mixed)")
    ap.add_argument("--workers", type=int, default=None, help="default: that of the inputs, else 1")
    ap.add_argument("--frame", default="64")
    ap.add_argument("--steer", default="owner")
    ap.add_argument("--title", default="rvs forwarding rate against concurrent connections")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    runs = load(a.inputs)
    good = [r for r in runs if r.get("ok") and not r.get("smoke")]
    if a.scenario is None:
        sc = {r.get("scenario") for r in good}
        a.scenario = sc.pop() if len(sc) == 1 else "established-udp"
    if a.workers is None:
        ws = {r.get("workers") for r in good if r.get("scenario") == a.scenario}
        a.workers = ws.pop() if len(ws) == 1 else 1
    sel = pick(runs, a)
    if not sel:
        print(f"plot-bench: no usable runs in {a.inputs} (scenario {a.scenario}, {a.workers} "
              f"worker(s), frame {a.frame}, ok, not --smoke); -v says why", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(render(sel, a))
    print(f"plot-bench: {len(sel)} point(s) -> {a.out}")
    for r in sel:
        tp = r.get("testpmd", {})
        print(f"  {r['conns']:>9} conns  rvs {r['rvs']['mpps_forwarded']:.3f} Mpps"
              + "".join(f"  {m} {tp[m]['mpps']:.3f}" for m in ("io", "5tswap") if m in tp)
              + f"   ({os.path.basename(r['_file'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
