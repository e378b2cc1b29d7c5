"""The command line: the parser and one cmd_* per subcommand (printing, exit status)."""
import argparse
import json
import platform
import sys

from .common import load_json, machine_info, read_text, write_result
from .config import write_config
from .counters import cpu_share, number, snap_time, table_conns
from .http_report import http_report
from .kflood import kflood_report
from .latency import last_json_line, latency_report, latency_row
from .prep import edit_dests, mempool_size, neighbours, pcap_devargs
from .report import bench_report
from .scrape import extra_services, prom_query

# The --help text (argparse rewraps it): what benchlib.py's help has always said.
DESCRIPTION = """\
The computing half of the benchmark scripts (scripts/bench.sh, scripts/bench-latency.sh,
scripts/bench-http.sh): sizes, configuration files, counter arithmetic, the reports and their
checks. The shell scripts run processes and read counters; everything they would otherwise do
with Python pasted into here-documents is a subcommand of this program:"""


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
    write_config(a.template, a.out, a.values, a.set)


def cmd_table_conns(a):
    listing = json.load(sys.stdin) if a.listing in (None, "-") else load_json(a.listing)
    print(table_conns(listing))


def cmd_snap_time(a):
    print(snap_time(a.t0, a.t1, a.l0, a.l1, a.worker_ns))


def cmd_cpu_share(a):
    print(f'{{"cpu_share": {cpu_share(a.ns0, a.ns1, a.t0, a.t1, a.workers)}}}')


def cmd_sum(a):
    print(sum(number(x) for x in a.numbers))


def cmd_extra_services(a):
    for line in extra_services(a.services, a.reals):
        print(line)


def cmd_prom_query(a):
    print(json.dumps(prom_query(a.url, a.query)))


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


def cmd_kflood_report(a):
    a.runs = a.runs.split()
    res, lines = kflood_report(a.work, a, load_json(a.manifest), machine_info())
    write_result(a.out, res, 2)
    for line in lines:
        print(line)
    for w in res.get("warnings", []):
        print(f"bench: warning: {w}", file=sys.stderr)
    for e in res["errors"]:
        print(f"bench: FAIL: {e}", file=sys.stderr)
    return 1 if res["errors"] else 0


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


def run_arguments(s):
    """The description of a benchmark run that every report subcommand takes."""
    s.add_argument("--scenario", required=True)
    for n in ("conns", "workers", "duration", "warmup", "reals", "acks", "rounds"):
        s.add_argument("--" + n, type=int, required=True)
    s.add_argument("--frame", required=True)
    s.add_argument("--steer", required=True)
    s.add_argument("--smoke", type=flag, default=False)
    s.add_argument("--no-huge", type=flag, default=False)
    s.add_argument("--cpus", required=True)
    s.add_argument("--rules-by", required=True)
    s.add_argument("--others", default="", help="comma-separated pids")
    s.add_argument("--command", default="")


def parser():
    ap = argparse.ArgumentParser(prog="benchlib.py", description=DESCRIPTION)
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
    s.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="add a key at the end of a table (an integer, else a string)")
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

    s = add("extra-services", cmd_extra_services, "rules-file lines of services no traffic reaches")
    s.add_argument("services", type=int)
    s.add_argument("reals", type=int)
    s = add("prom-query", cmd_prom_query, "the first value of a Prometheus instant query")
    s.add_argument("url")
    s.add_argument("query")

    s = add("report", cmd_report, "bench.sh's result JSON, table and checks")
    s.add_argument("--work", required=True, help="the scratch directory with the snapshots")
    s.add_argument("--out", required=True)
    run_arguments(s)
    s.add_argument("--edits", type=int, default=0)
    s.add_argument("--scrape", type=int, default=0, help="--scrape-every: seconds between scrapes")
    s.add_argument("--testpmd-modes", default="", help="space-separated modes that ran")

    s = add("kflood-report", cmd_kflood_report,
            "bench.sh --kernel-flood's result JSON, table and checks (idle vs. flooded runs)")
    s.add_argument("--work", required=True, help="the scratch directory with the snapshots")
    s.add_argument("--out", required=True)
    s.add_argument("--runs", required=True, help="space-separated run names (idleK, floodK), in order")
    s.add_argument("--manifest", required=True, help="rvs-pcapgen's manifest of the flooded replay")
    run_arguments(s)
    for n in ("kernel-flood", "kernel-rate"):
        s.add_argument("--" + n, type=int, required=True)
    s.add_argument("--kernel-interface", required=True)
    s.add_argument("--kernel-backend", default="auto")
    s.add_argument("--netns", default="")

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
