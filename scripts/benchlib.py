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
    benchlib.py write-config [--set TABLE.KEY=VALUE]... TEMPLATE|- OUT NAME=VALUE...
    benchlib.py table-conns [LISTING.json]             -> connections in an `rvsadm -L -n --json`
    benchlib.py snap-time T0 T1 L0 L1 WORKER_NS        -> the JSON of one counter snapshot's times
    benchlib.py cpu-share NS0 NS1 T0 T1 WORKERS        -> {"cpu_share": X}
    benchlib.py sum NUMBER...
    benchlib.py report ...                             (bench.sh: JSON, table, checks; exit 1 on FAIL)
    benchlib.py kflood-report ...                      (bench.sh --kernel-flood: idle vs. flooded)
    benchlib.py latency-row ... / latency-max-pps ROW / latency-report ...   (bench-latency.sh)
    benchlib.py http-report ...                        (bench-http.sh)

Every value comes in as an argument, a file or stdin, never as program text: a quote, a dollar
or a backslash in a path is just a character. The output formats (result JSON, tables) are
those the scripts always wrote; tests/lab_bench*.rs, scripts/plot-bench.py and
docs/benchmarks.md read them. Standard library only. Tests: scripts/tests/test_benchlib.py.

This file is only the entry point; the code is the package scripts/rvsbench/, one module per
seam (each depends only on those above it):

    common.py       load_json, read_text, write_result, machine_info
    config.py       write-config: TOML escaping, @NAME@ templating
    prep.py         mempool-size, devargs, neigh, dests: from rvs-pcapgen's manifest
    counters.py     table-conns, snap-time, cpu-share, sum; port deltas, connection counts
    report.py       report: bench.sh's result, table and checks (reconfiguration included)
    kflood.py       kflood-report: bench.sh --kernel-flood, the exception path idle vs. flooded
    latency.py      latency-row, latency-max-pps, latency-report (bench-latency.sh)
    http_report.py  http-report (bench-http.sh)
    cli.py          the parser and one cmd_* per subcommand: printing and exit status
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rvsbench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
