"""Tests of scripts/benchlib.py, the package scripts/rvsbench/ (and the helpers of scripts/lib.sh).

    /usr/bin/python3 -m unittest discover -s scripts/tests     (scripts/test.sh runs it)

fixtures/bench/*: counter snapshots kept from real `scripts/bench.sh --smoke --keep` runs (the
scratch directory's JSON, testpmd logs; kflood: `--smoke --cpus 1,0 --kernel-flood 16 --keep`,
with the flooded replay's manifest). The cases below run the report on them as they are and
altered (replies that miss, SYNs that open nothing, edits refused, ...). fixtures/golden/*: what
the report wrote for each case (result JSON, stdout, stderr); first written by the Python
here-documents of bench.sh, bench-latency.sh and bench-http.sh at commit 9e5682d, so that the
package writes byte for byte what the scripts always wrote. After an intended change of a
format, BENCHLIB_REGOLD=1 rewrites them from the package (and the diff shows what changed).
"""
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.dirname(HERE)
sys.path.insert(0, SCRIPTS)

from rvsbench import cli, common, config, counters, http_report, kflood, latency, prep, report  # noqa: E402

FIX = os.path.join(HERE, "fixtures")
GOLDEN = os.path.join(FIX, "golden")
REGOLD = os.environ.get("BENCHLIB_REGOLD") == "1"


# ---- altering fixtures --------------------------------------------------------------------------

def edit_json(work, name, fn):
    p = os.path.join(work, name)
    with open(p) as f:
        v = json.load(f)
    fn(v)
    with open(p, "w") as f:
        json.dump(v, f)


def sw(work, name, role, key, delta):
    """Adds delta to a port's software counter."""
    def fn(v):
        counters.port(v, role)["sw"][key] += delta
    edit_json(work, name, fn)


def add_drop(work, name, role, reason, n):
    def fn(v):
        d = counters.port(v, role)["sw"]["drops"]
        for e in d:
            if e[0] == reason:
                e[1] += n
                return
        d.append([reason, n])
    edit_json(work, name, fn)


def svc_stat(work, name, delta):
    def fn(v):
        v["services"][0]["stats"]["conns"] += delta
    edit_json(work, name, fn)


def inactconns(work, name, delta):
    def fn(v):
        v["services"][0]["dests"][0]["inactconns"] += delta
    edit_json(work, name, fn)


def set_keys(work, name, **kv):
    edit_json(work, name, lambda v: v.update(kv))


def write(work, name, text):
    with open(os.path.join(work, name), "w") as f:
        f.write(text)


def delta(work, role, key):
    """after - before of a counter of the main window."""
    with open(os.path.join(work, "before-ports.json")) as f:
        b = json.load(f)
    with open(os.path.join(work, "after-ports.json")) as f:
        a = json.load(f)
    return counters.port(a, role)["sw"][key] - counters.port(b, role)["sw"][key]


def miss_replies(w):
    sw(w, "after-ports.json", "public", "tx_packets", -delta(w, "public", "tx_packets") // 20)


def drop_requests(w):
    sw(w, "after-ports.json", "private", "tx_packets", -delta(w, "private", "tx_packets") // 50)


def no_replies(w):
    sw(w, "after-ports.json", "private", "rx_packets", -delta(w, "private", "rx_packets"))


def nothing_forwarded(w):
    for role in ("public", "private"):
        sw(w, "after-ports.json", role, "tx_packets", -delta(w, role, "tx_packets"))


def overload(n_frac, miss_frac):
    def fn(w):
        rx = delta(w, "public", "rx_packets")
        add_drop(w, "after-ports.json", "public", "handover_full", rx // n_frac)
        if miss_frac:
            sw(w, "after-ports.json", "public", "tx_packets", -delta(w, "public", "tx_packets") // miss_frac)
    return fn


def syn_short(w):
    with open(os.path.join(w, "after-list.json")) as f:
        a = json.load(f)
    with open(os.path.join(w, "before-list.json")) as f:
        b = json.load(f)
    svc_stat(w, "after-list.json", -(counters.svc_conns(a) - counters.svc_conns(b)) // 2)


def slow_reads(w):
    for n in ("before-time.json", "after-time.json"):
        set_keys(w, n, read_s=0.4, lread_s=0.3)


def syn_requests_dropped(w):
    sw(w, "after-ports.json", "private", "tx_packets", -delta(w, "private", "tx_packets") // 10)


def old_time_files(w):
    # Snapshots without "tl"/"lread_s" (bench.sh before they were recorded): the port window.
    for n in ("before-time.json", "after-time.json"):
        edit_json(w, n, lambda v: [v.pop("tl"), v.pop("lread_s")])


def edits_client(**kv):
    return lambda w: set_keys(w, "edits.json", **kv)


def edits_lost(w):
    add_drop(w, "eafter-ports.json", "private", "lb", 7)
    sw(w, "eafter-ports.json", "private", "rx_packets", 7)


def edits_unaccounted(w):
    sw(w, "eafter-ports.json", "public", "rx_packets", 5000)


def edits_new_conns(w):
    svc_stat(w, "eafter-list.json", 3)
    inactconns(w, "eafter-list.json", -3)


def edits_nothing(w):
    # The edit window's counters stand still: nothing received, nothing forwarded.
    with open(os.path.join(w, "ebefore-ports.json")) as f:
        b = json.load(f)
    edit_json(w, "eafter-ports.json", lambda v: v.update(ports=b["ports"]))


def truncate_testpmd(w):
    with open(os.path.join(w, "testpmd-io.log")) as f:
        head = f.read().split("NIC statistics")[0]
    write(w, "testpmd-io.log", head)


def no_cpu_file(w):
    os.remove(os.path.join(w, "testpmd-5tswap-cpu.json"))


def zero_cpu_share(w):
    write(w, "testpmd-5tswap-cpu.json", '{"cpu_share": 0.0}\n')


def perf_files(w):
    write(w, "perf-stat.txt", " Performance counter stats for thread id '123':\n\n  1,000.00 msec task-clock\n")
    write(w, "perf-report.txt", "    30.00%  [.] eth_pcap_rx_infinite\n    12.00%  [.] rvs::lb::Lb::process\n")


def compose(*fns):
    def fn(w):
        for f in fns:
            f(w)
    return fn


SMOKE = dict(conns=256, workers=1, duration=1, warmup=1, frame="64", steer="owner", reals=1,
             acks=1, rounds=1, smoke=True, no_huge=False, cpus="0,1",
             rules_by="rules file at start", others="", command="scripts/bench.sh --smoke",
             edits=0, testpmd_modes=[])
UDP = dict(SMOKE, scenario="established-udp")
TCP = dict(SMOKE, scenario="established-tcp")
SYN = dict(SMOKE, scenario="syn")
EDITS = dict(UDP, edits=200)
SCRAPE = dict(UDP, scrape=1, duration=3)
TESTPMD = dict(UDP, testpmd_modes=["io", "5tswap"])

# name: (fixture, parameters, alteration)
BENCH_CASES = {
    "udp": ("udp", TESTPMD, None),
    "udp-full": ("udp", dict(TESTPMD, smoke=False, no_huge=True, others="4242,4343",
                             rules_by="rvsadm -R after start", cpus="1,0", duration=10, warmup=1,
                             command="scripts/bench.sh --cpus 1,0 --perf"), perf_files),
    "udp-replies-miss": ("udp", UDP, miss_replies),
    "udp-requests-dropped": ("udp", UDP, drop_requests),
    "udp-not-steady": ("udp", UDP, lambda w: svc_stat(w, "after-list.json", 5000)),
    "udp-no-replies": ("udp", UDP, no_replies),
    "udp-nothing-forwarded": ("udp", UDP, nothing_forwarded),
    "udp-overload": ("udp", dict(UDP, steer="spray", workers=2, cpus="0,1,0"), overload(10, 0)),
    "udp-overload-miss": ("udp", dict(UDP, steer="spray"), overload(1000, 20)),
    "udp-testpmd-no-stats": ("udp", TESTPMD, truncate_testpmd),
    "udp-testpmd-no-cpu": ("udp", TESTPMD, no_cpu_file),
    "udp-testpmd-zero-cpu": ("udp", TESTPMD, zero_cpu_share),
    "tcp": ("tcp", TCP, None),
    "tcp-imix": ("tcp", dict(TCP, frame="imix", acks=4, reals=3, rounds=2), None),
    "syn": ("syn", SYN, None),
    "syn-short": ("syn", SYN, syn_short),
    "syn-slow-reads": ("syn", SYN, slow_reads),
    "syn-slow-reads-short": ("syn", SYN, compose(slow_reads, syn_short)),
    "syn-requests-dropped": ("syn", SYN, syn_requests_dropped),
    "syn-old-time-files": ("syn", SYN, old_time_files),
    "edits": ("edits", EDITS, None),
    "scrape": ("scrape", SCRAPE, None),
    "scrape-lost": ("scrape", SCRAPE, lambda w: scrape_drop(w, 7)),
    "scrape-failed": ("scrape", SCRAPE, lambda w: scrape_prom(w, up_min=0.0)),
    "edits-slow-smoke": ("edits", EDITS, edits_client(achieved_per_s=120.5)),
    "edits-slow": ("edits", dict(EDITS, smoke=False), edits_client(achieved_per_s=120.5)),
    "edits-refused": ("edits", EDITS, edits_client(
        errors=3, unanswered=1, error_samples={"edit_dest": "no such real server"})),
    "edits-lost": ("edits", EDITS, edits_lost),
    "edits-unaccounted": ("edits", EDITS, edits_unaccounted),
    "edits-new-conns": ("edits", EDITS, edits_new_conns),
    "edits-nothing-forwarded": ("edits", EDITS, edits_nothing),
}


def scrape_drop(work, n):
    """n packets of the scraped window dropped (tx_full on the public port)."""
    path = os.path.join(work, "safter-ports.json")
    d = json.loads(read(path))
    for port in d["ports"]:
        if port["role"] == "public":
            port["sw"]["drops"] = [[k, v + n if k == "tx_full" else v] for k, v in port["sw"]["drops"]]
    with open(path, "w") as f:
        json.dump(d, f)


def scrape_prom(work, **over):
    path = os.path.join(work, "scrape.json")
    d = dict(json.loads(read(path)), **over)
    with open(path, "w") as f:
        json.dump(d, f)


def materialise(fixture, alter, dst):
    shutil.copytree(os.path.join(FIX, "bench", fixture), dst)
    if alter:
        alter(dst)


def report_argv(work, out, p):
    argv = ["report", "--work", work, "--out", out, "--scenario", p["scenario"]]
    for k in ("conns", "workers", "duration", "warmup", "reals", "acks", "rounds", "edits",
              "frame", "steer", "cpus", "others", "command"):
        argv += ["--" + k, str(p[k])]
    argv += ["--rules-by", p["rules_by"], "--smoke", "1" if p["smoke"] else "0",
             "--no-huge", "true" if p["no_huge"] else "false",
             "--testpmd-modes", " ".join(p["testpmd_modes"])]
    if p.get("scrape"):
        argv += ["--scrape", str(p["scrape"])]
    return argv


def run_main(argv):
    """cli.main(argv): (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def read(path):
    with open(path) as f:
        return f.read()


class Golden(unittest.TestCase):
    """A case's outputs against fixtures/golden/KIND-CASE.{json,out,err}. The result path in
    stdout is bench-results/KIND-CASE.json, as when the golden files were written."""

    def check(self, name, rc, out, err, result_text, out_path):
        out = out.replace(out_path, f"bench-results/{name}.json")
        base = os.path.join(GOLDEN, name)
        if REGOLD:
            os.makedirs(GOLDEN, exist_ok=True)
            for ext, text in ((".out", out), (".err", err), (".json", result_text)):
                with open(base + ext, "w") as f:
                    f.write(text)
        self.assertEqual(result_text, read(base + ".json"), f"{name}: result JSON")
        self.assertEqual(out, read(base + ".out"), f"{name}: stdout")
        self.assertEqual(err, read(base + ".err"), f"{name}: stderr")
        self.assertEqual(rc, 0 if json.loads(result_text)["ok"] else 1, f"{name}: status")

    def golden_machine(self, name, default):
        p = os.path.join(GOLDEN, name + ".json")
        if REGOLD and not os.path.exists(p):
            return default
        return json.loads(read(p))["machine"]


class BenchReportGolden(Golden):
    def test_cases(self):
        for case, (fixture, p, alter) in BENCH_CASES.items():
            with self.subTest(case=case), tempfile.TemporaryDirectory() as t:
                work, out = os.path.join(t, "work"), os.path.join(t, "out.json")
                materialise(fixture, alter, work)
                name = "bench-" + case
                machine = self.golden_machine(name, common.machine_info())
                with mock.patch.object(cli, "machine_info", return_value=machine):
                    rc, so, se = run_main(report_argv(work, out, dict(p)))
                self.check(name, rc, so, se, read(out), out)


class BenchReport(unittest.TestCase):
    """What the report says, case by case (the golden files pin how it says it)."""

    def report(self, case, **over):
        fixture, p, alter = BENCH_CASES[case]
        p = dict(p, **over)
        with tempfile.TemporaryDirectory() as t:
            work = os.path.join(t, "work")
            materialise(fixture, alter, work)
            a = cli.parser().parse_args(report_argv(work, os.path.join(t, "o.json"), p))
            a.testpmd_modes = a.testpmd_modes.split()
            res, lines = report.bench_report(work, a, {"cpu": "test"})
        # What goes into the file is JSON as is.
        self.assertEqual(json.loads(json.dumps(res)), res)
        return res, lines

    def test_established_udp_checks_out(self):
        res, lines = self.report("udp")
        r = res["rvs"]
        self.assertTrue(res["ok"], res["errors"])
        self.assertEqual(res["errors"], [])
        self.assertGreaterEqual(r["reply_hit_ratio"], 0.99)
        self.assertGreaterEqual(r["request_fwd_ratio"], 0.99)
        self.assertEqual(r["new_conns"], 0)
        self.assertEqual(r["conns_in_table_end"], 256)
        self.assertEqual(r["forwarded_packets"], r["public"]["tx_packets"] + r["private"]["tx_packets"])
        self.assertAlmostEqual(r["mpps_forwarded"], r["forwarded_packets"] / res["duration_s"] / 1e6, 1)
        for m in ("io", "5tswap"):
            self.assertGreater(res["testpmd"][m]["mpps"], 0)
            self.assertAlmostEqual(res["ratio_to_testpmd"][m], r["mpps_forwarded"] / res["testpmd"][m]["mpps"], 2)
        self.assertEqual(lines[0], "")
        self.assertTrue(lines[1].startswith("scenario established-udp  conns 256  workers 1  frame 64"))
        self.assertTrue(lines[-1].startswith("results: "))

    def test_parameters_are_recorded_as_given(self):
        res, _ = self.report("udp-full")
        self.assertFalse(res["smoke"])
        self.assertFalse(res["hugepages"])
        self.assertEqual(res["other_dpdk_processes"], ["4242", "4343"])
        self.assertEqual(res["rules_applied_by"], "rvsadm -R after start")
        self.assertIn("task-clock", res["perf_stat"])
        self.assertIn("eth_pcap_rx_infinite", res["perf_report"])
        res, _ = self.report("tcp-imix")
        self.assertEqual((res["frame"], res["acks"], res["reals"], res["rounds"]), ("imix", 4, 3, 2))
        self.assertEqual(res["testpmd"], {})
        self.assertEqual(res["ratio_to_testpmd"], {})

    def test_odd_characters_are_just_characters(self):
        # The reason for this module: bench.sh spliced "$cmdline" into Python source, and a
        # quote in any argument broke the report.
        cmd = 'scripts/bench.sh --results "/tmp/it\'s \\"here\\"" $HOME `x` \\n {}'
        res, lines = self.report("udp", command=cmd, rules_by='a "b" \\c', others="1,,2,")
        self.assertEqual(res["command"], cmd)
        self.assertEqual(res["rules_applied_by"], 'a "b" \\c')
        self.assertEqual(res["other_dpdk_processes"], ["1", "2"])
        with tempfile.TemporaryDirectory() as t:
            odd = os.path.join(t, 'res "1" it\'s $x')
            os.mkdir(odd)
            work = os.path.join(t, "work")
            materialise("udp", None, work)
            out = os.path.join(odd, "r.json")
            rc, so, _ = run_main(report_argv(work, out, dict(UDP, command=cmd)))
            self.assertEqual(rc, 0)
            self.assertEqual(json.loads(read(out))["command"], cmd)
            self.assertIn(f"results: {out}\n", so)

    def test_replies_that_miss_fail(self):
        res, _ = self.report("udp-replies-miss")
        self.assertFalse(res["ok"])
        self.assertLess(res["rvs"]["reply_hit_ratio"], 0.99)
        self.assertEqual(len(res["errors"]), 1)
        self.assertRegex(res["errors"][0], r"^reply hit ratio 0\.9\d+: replies miss their connections$")

    def test_dropped_requests_fail(self):
        res, _ = self.report("udp-requests-dropped")
        self.assertEqual(len(res["errors"]), 1)
        self.assertRegex(res["errors"][0], r"^request forward ratio 0\.98\d+: client packets are dropped$")

    def test_new_connections_in_steady_state_fail(self):
        res, _ = self.report("udp-not-steady")
        self.assertEqual(res["rvs"]["new_conns"], 5000)
        self.assertEqual(res["errors"], ["5000 new connections during the measurement: not steady state"])
        # The tolerance: 0.1% of the client packets.
        rx = res["rvs"]["public"]["rx_packets"]
        for n, bad in ((int(0.001 * rx), False), (int(0.001 * rx) + 1, True)):
            with tempfile.TemporaryDirectory() as t:
                work = os.path.join(t, "w")
                materialise("udp", lambda w, n=n: svc_stat(w, "after-list.json", n), work)
                a = cli.parser().parse_args(report_argv(work, "o", UDP))
                a.testpmd_modes = []
                res, _ = report.bench_report(work, a, {})
                self.assertEqual(not res["ok"], bad, (n, res["errors"]))

    def test_no_replies_fail(self):
        res, _ = self.report("udp-no-replies")
        self.assertIn("no replies received", res["errors"])
        self.assertEqual(res["rvs"]["reply_hit_ratio"], 0)

    def test_nothing_forwarded_fails(self):
        res, _ = self.report("udp-nothing-forwarded")
        self.assertEqual(res["errors"][0], "nothing was forwarded")
        self.assertEqual(res["rvs"]["mpps_forwarded"], 0)

    def test_overload_drops_are_judged_apart(self):
        res, lines = self.report("udp-overload")
        r = res["rvs"]
        self.assertTrue(res["ok"], res["errors"])
        self.assertGreater(r["overload_drops"], 0)
        self.assertEqual(res["warnings"], [f"{r['overload_drops']} packets dropped on full handover rings (overload)"])
        rx, fwd = r["received_packets"], r["forwarded_packets"]
        self.assertEqual(r["fwd_ratio_excluding_overload"], round(fwd / (rx - r["overload_drops"]), 5))
        self.assertTrue(any(l.startswith("overload (handover full)") for l in lines))
        res, _ = self.report("udp-overload-miss")
        self.assertEqual(len(res["errors"]), 1)
        self.assertRegex(res["errors"][0], r"^forward ratio 0\.9\d+ excluding overload drops: packets miss$")

    def test_syn_connections_per_syn(self):
        res, lines = self.report("syn")
        r = res["rvs"]
        self.assertTrue(res["ok"], res["errors"])
        self.assertGreaterEqual(r["syn_conn_ratio_min"], 0.6)
        self.assertGreaterEqual(r["syn_conn_ratio"], r["syn_conn_ratio_min"])
        self.assertGreaterEqual(r["request_fwd_ratio"], 0.99)
        self.assertEqual(r["private"]["rx_packets"], 0)
        self.assertNotIn("reply_hit_ratio", r)
        self.assertTrue(any(l.startswith("new connections") for l in lines))
        res, _ = self.report("syn-short")
        self.assertFalse(res["ok"])
        self.assertRegex(res["errors"][0], r"^only \d+ connections for \d+ SYNs \(rate ratio 0\.4\d*, "
                                           r"at least 0\.\d+ expected\): SYNs do not open connections$")
        res, _ = self.report("syn-requests-dropped")
        self.assertRegex(res["errors"][-1], r"^only \d+ of \d+ client packets forwarded$")

    def test_syn_tolerance_follows_the_reads(self):
        # Slow reads widen the tolerance down to the 0.6 floor, and no further: a scenario that
        # opens a connection for half the SYNs still fails.
        res, _ = self.report("syn-slow-reads")
        self.assertEqual(res["rvs"]["syn_conn_ratio_min"], 0.6)
        self.assertTrue(res["ok"])
        res, _ = self.report("syn-slow-reads-short")
        self.assertFalse(res["ok"])
        self.assertIn("at least 0.6 expected", res["errors"][0])
        # Without the service-counter times, the port window stands for both.
        res, _ = self.report("syn-old-time-files")
        self.assertTrue(res["ok"], res["errors"])

    def test_syn_conn_ratio_min(self):
        f = report.syn_conn_ratio_min
        t = {"read_s": 0.01, "lread_s": 0.005}
        self.assertEqual(f(t, t, 1.0, 1.0), 0.96)            # 0.99 - 0.03
        self.assertEqual(f(t, t, 10.0, 9.0), round(0.99 - 0.03 / 9, 4))
        self.assertEqual(f({"read_s": 0.01}, {"read_s": 0.02}, 1.0, 2.0), 0.96)
        self.assertEqual(f({"read_s": 1}, {"read_s": 1}, 1.0, 1.0), 0.6)
        self.assertEqual(f(t, t, 0.0, 1.0), 0.6)              # no window: the floor
        self.assertEqual(f({"read_s": 0, "lread_s": 0}, {"read_s": 0}, 1.0, 1.0), 0.99)

    def test_edits_under_load(self):
        res, lines = self.report("edits")
        rc = res["reconfig"]
        self.assertTrue(res["ok"], res["errors"])
        self.assertEqual(rc["edits_per_s_target"], 200)
        self.assertEqual(rc["lost_existing_packets"], 0)
        self.assertEqual(rc["inflight_bound"], 256)
        self.assertEqual(rc["new_conns"], 0)
        self.assertEqual(rc["conns_in_table_end"], 256)
        # Without edits: the mean of the windows before and after.
        self.assertAlmostEqual(rc["mpps_forwarded_without_edits"], sum(rc["mpps_windows_without_edits"]) / 2, 3)
        self.assertGreaterEqual(rc["edits_acked"], 2 * rc["edit_client"]["cycle_len"])
        self.assertTrue(any(l.startswith("with 200 edits/s") for l in lines))

    def test_scraping_under_load(self):
        res, lines = self.report("scrape")
        sc = res["scrape"]
        self.assertTrue(res["ok"], res["errors"])
        self.assertEqual(sc["scrape_every_s"], 1)
        self.assertEqual(sc["packets_lost_scraped"], 0)
        self.assertEqual(sc["services_listed"], 11)
        self.assertAlmostEqual(sc["ratio_to_without"],
                               sc["mpps_forwarded_scraped"] / (sum(sc["mpps_windows_without"]) / 2), 2)
        self.assertTrue(any(l.startswith("scraped every 1 s") for l in lines))
        self.assertTrue(any(l.startswith("scrapes ") for l in lines))
        self.assertEqual(counters.window(os.path.join(FIX, "bench", "scrape"), 1, "sbefore", "safter")["lost"], 0)

    def test_scrapes_that_drop_or_fail_fail(self):
        res, _ = self.report("scrape-lost")
        self.assertIn("7 packets dropped while scraping", res["errors"])
        res, _ = self.report("scrape-failed")
        self.assertIn("a scrape failed (up was not 1 throughout the window)", res["errors"])

    def test_extra_services(self):
        from rvsbench import scrape
        lines = scrape.extra_services(300, 10)
        self.assertEqual(len(lines), 300 * 11)
        self.assertEqual(lines[0], "-A -t 10.1.0.1:80 -s wrr")
        self.assertEqual(lines[-1], "-a -t 10.1.1.44:80 -r 10.2.11.184:80 -m -w 1")
        self.assertEqual(len(set(l for l in lines if l.startswith("-a"))), 3000)

    def test_edits_too_slow_warns_in_smoke_fails_otherwise(self):
        res, _ = self.report("edits-slow-smoke")
        self.assertTrue(res["ok"])
        self.assertEqual(len(res["warnings"]), 1)
        self.assertTrue(res["warnings"][0].startswith("only 120.5 edits/s of the 200 asked"))
        res, _ = self.report("edits-slow")
        self.assertFalse(res["ok"])
        self.assertNotIn("warnings", res)
        self.assertTrue(res["errors"][0].startswith("only 120.5 edits/s of the 200 asked"))
        # 95% of the target is enough.
        fixture, p, _ = BENCH_CASES["edits"]
        with tempfile.TemporaryDirectory() as t:
            work = os.path.join(t, "w")
            materialise("edits", edits_client(achieved_per_s=190.0), work)
            a = cli.parser().parse_args(report_argv(work, "o", dict(p, smoke=False)))
            a.testpmd_modes = []
            res, _ = report.bench_report(work, a, {})
            self.assertTrue(res["ok"], res["errors"])

    def test_edits_that_lose_or_refuse_fail(self):
        res, _ = self.report("edits-refused")
        self.assertEqual(res["errors"], ["3 edits refused, 1 unanswered: {'edit_dest': 'no such real server'}"])
        res, _ = self.report("edits-lost")
        self.assertEqual(res["reconfig"]["dropped_packets"], 7)
        self.assertEqual(res["reconfig"]["lost_existing_packets"], 7)
        self.assertTrue(res["errors"][0].startswith("7 packets of existing connections dropped during the edits"))
        res, _ = self.report("edits-unaccounted")
        rc = res["reconfig"]
        self.assertGreater(rc["unaccounted_packets"], rc["inflight_bound"])
        self.assertEqual(rc["lost_existing_packets"], rc["unaccounted_packets"] - rc["inflight_bound"])
        self.assertIn("were neither forwarded nor dropped (more than the 256 that can be in flight)",
                      res["errors"][0])
        res, _ = self.report("edits-new-conns")
        self.assertEqual(res["errors"], [
            "3 new connections during the edits: existing connections lost their entries",
            "253 of 256 connections left after the edits"])
        res, _ = self.report("edits-nothing-forwarded")
        self.assertIn("nothing was forwarded during the edits", res["errors"])

    def test_testpmd_statistics(self):
        res, _ = self.report("udp-testpmd-no-stats")
        self.assertEqual(res["errors"], ["testpmd io: no statistics parsed"])
        self.assertEqual(list(res["testpmd"]), ["5tswap"])
        res, _ = self.report("udp-testpmd-no-cpu")
        self.assertNotIn("worker_cpu_share", res["testpmd"]["5tswap"])
        self.assertEqual(list(res["ratio_to_testpmd_per_cpu_second"]), ["io"])
        res, _ = self.report("udp-testpmd-zero-cpu")
        self.assertIsNone(res["testpmd"]["5tswap"]["mpps_per_worker_cpu_second"])

    def test_testpmd_rates(self):
        def block(port, pps):
            return (f"  ######################## NIC statistics for port {port}  ########################\n"
                    f"  RX-packets: 1 RX-missed: 0 RX-bytes: 60\n"
                    f"  Throughput (since last show)\n  Rx-pps: 1 Rx-bps: 1\n  Tx-pps: {pps:>12} Tx-bps: 1\n")
        txt = "".join(block(0, 100 * i) + block(1, 100 * i + 1) for i in range(1, 8))
        # The first (partial) period and 2 of warm-up skipped; then at most 3.
        self.assertEqual(report.testpmd_rates(txt, 2, 3), [801, 1001, 1201])
        self.assertEqual(report.testpmd_rates(txt, 2, 30), [801, 1001, 1201, 1401])
        # A period missing a port's block is not a period (the last one, cut short).
        self.assertEqual(report.testpmd_rates(txt + block(0, 5), 5, 9), [1401])
        self.assertIsNone(report.testpmd_rates(txt, 7, 3))
        self.assertIsNone(report.testpmd_rates("EAL: probing\n", 0, 3))


def lat_ports(rx, tx, drops, buckets):
    """An `rvsadm --stats-ports --json` with what bench-latency.sh reads of it."""
    return {"ports": [
        {"role": "public", "sw": {"rx_packets": rx, "tx_packets": tx, "drops": [["runt", 0], ["lb", drops]]}},
        {"role": "private", "sw": {"rx_packets": rx, "tx_packets": tx, "drops": [["runt", 0], ["lb", 0]]}}],
        "workers": [{"latency": {"buckets": buckets}}]}


def wrk_output(requests=18197, rs=(9101, 9096), other=0, errors=None, non_2xx=0, p50=11400, p99=28100):
    """wrk's output with the WRKJSON line of bench-http.sh's count.lua."""
    e = dict(dict(connect=0, read=0, write=0, status=0, timeout=0), **(errors or {}))
    w = {"requests": requests, "duration_us": 10060000, "bytes": 2000000, "errors": e,
         "latency_us": {"min": 300, "mean": 12000.5, "stdev": 3000.25, "p50": p50, "p90": 19200,
                        "p99": p99, "p999": 39000, "max": 40900},
         "by_rs": {"RS1": rs[0], "RS2": rs[1], "other": other}, "non_2xx": non_2xx}
    return ("Running 10s test @ http://10.0.0.13/\n  2 threads and 32 connections\n"
            "Requests/sec:   1809.00\nWRKJSON " + json.dumps(w) + "\n")


# ---- bench.sh --kernel-flood -------------------------------------------------------------------

KFLOOD_RUNS = ["idle1", "flood1", "idle2", "flood2", "idle3", "flood3"]
KFLOOD = dict(SMOKE, scenario="established-udp", cpus="1,0", kernel_flood=16, kernel_rate=20000,
              kernel_interface="rvsbk31444", kernel_backend="auto", netns="rvsbench-31444",
              command="scripts/bench.sh --smoke --cpus 1,0 --kernel-flood 16 --keep")


def kflood_argv(work, out, p, runs=KFLOOD_RUNS):
    argv = ["kflood-report", "--work", work, "--out", out, "--runs", " ".join(runs),
            "--manifest", os.path.join(work, "manifest.json"), "--scenario", p["scenario"]]
    for k in ("conns", "workers", "duration", "warmup", "reals", "acks", "rounds", "frame", "steer",
              "cpus", "others", "command", "kernel_flood", "kernel_rate", "kernel_interface",
              "kernel_backend", "netns"):
        argv += ["--" + k.replace("_", "-"), str(p[k])]
    argv += ["--rules-by", p["rules_by"], "--smoke", "1" if p["smoke"] else "0",
             "--no-huge", "true" if p["no_huge"] else "false"]
    return argv


def kdelta(work, run, role, key):
    with open(os.path.join(work, run + "-before-ports.json")) as f:
        b = json.load(f)
    with open(os.path.join(work, run + "-after-ports.json")) as f:
        a = json.load(f)
    return counters.port(a, role)["sw"][key] - counters.port(b, role)["sw"][key]


def scale_traffic(run, factor):
    """Scales what the run received and forwarded on both ports by factor (hit ratios and, in
    an idle run, which holds no host-bound packets, every share stay as they are)."""
    def fn(w):
        for role in ("public", "private"):
            for key in ("rx_packets", "tx_packets"):
                d = kdelta(w, run, role, key)
                sw(w, run + "-after-ports.json", role, key, int(d * factor) - d)
    return fn


def host_bound_in_idle(w):
    sw(w, "idle2-after-ports.json", "private", "to_kernel", 500)


def no_kernel_drops(w):
    d = kdelta(w, "flood1", "private", "kernel_drops")
    sw(w, "flood1-after-ports.json", "private", "kernel_drops", -d)
    sw(w, "flood1-after-ports.json", "private", "to_kernel", d)   # all of it went up instead


def half_rate(w):
    sw(w, "flood2-after-ports.json", "private", "to_kernel", -kdelta(w, "flood2", "private", "to_kernel") // 2)


def flood_replies_miss(w):
    sw(w, "flood3-after-ports.json", "public", "tx_packets", -kdelta(w, "flood3", "public", "tx_packets") // 20)


def twin_left(w):
    os.remove(os.path.join(w, "flood1-twin-gone.txt"))


def other_share(w):
    edit_json(w, "manifest.json", lambda m: m["kernel_flood"].update(packets=8))


def public_kernel(w):
    sw(w, "idle1-after-ports.json", "public", "kernel_drops", 3)


KFLOOD_CASES = {
    "kflood": (KFLOOD, None),
    "kflood-target-missed": (KFLOOD, compose(scale_traffic("idle1", 1.5), scale_traffic("idle2", 1.5),
                                             scale_traffic("idle3", 1.5))),
    "kflood-host-bound-in-idle": (KFLOOD, host_bound_in_idle),
    "kflood-no-drops": (KFLOOD, no_kernel_drops),
    "kflood-half-rate": (KFLOOD, half_rate),
    "kflood-replies-miss": (KFLOOD, flood_replies_miss),
    "kflood-twin-left": (KFLOOD, twin_left),
    "kflood-other-share": (KFLOOD, other_share),
    "kflood-public-kernel": (KFLOOD, public_kernel),
}


class KfloodGolden(Golden):
    def test_cases(self):
        for case, (p, alter) in KFLOOD_CASES.items():
            with self.subTest(case=case), tempfile.TemporaryDirectory() as t:
                work, out = os.path.join(t, "work"), os.path.join(t, "out.json")
                materialise("kflood", alter, work)
                name = "bench-" + case
                machine = self.golden_machine(name, common.machine_info())
                with mock.patch.object(cli, "machine_info", return_value=machine):
                    rc, so, se = run_main(kflood_argv(work, out, dict(p)))
                self.check(name, rc, so, se, read(out), out)


class KfloodReport(unittest.TestCase):
    """What bench.sh --kernel-flood's report says (the golden files pin how it says it)."""

    def report(self, case, runs=KFLOOD_RUNS):
        p, alter = KFLOOD_CASES[case]
        with tempfile.TemporaryDirectory() as t:
            work = os.path.join(t, "work")
            materialise("kflood", alter, work)
            a = cli.parser().parse_args(kflood_argv(work, os.path.join(t, "o.json"), p, runs))
            a.runs = a.runs.split()
            res, lines = kflood.kflood_report(work, a, common.load_json(a.manifest), {"cpu": "test"})
        self.assertEqual(json.loads(json.dumps(res)), res)
        return res, lines

    def test_checks_out(self):
        res, lines = self.report("kflood")
        self.assertTrue(res["ok"], res["errors"])
        self.assertEqual([r["kind"] for r in res["runs"]], ["idle", "flood"] * 3)
        self.assertEqual(res["kernel"]["twin"], "rvsbk31444 (tap)")
        f = res["flood"]
        self.assertEqual((f["every"], f["host_bound_packets_in_private_pcap"], f["private_pcap_packets"]), (16, 16, 272))
        self.assertAlmostEqual(f["share_of_private_pcap"], 1 / 17, 4)
        for r in res["runs"]:
            self.assertGreaterEqual(r["reply_hit_ratio"], 0.99)
            self.assertTrue(r["twin_removed_after_run"])
            self.assertEqual(r["twin"], "rvsbk31444 (tap)")
            # Where the CPUs' time went, and how long the worker waited for its CPU.
            self.assertEqual(set(r["cpus"]), {"cpu0", "cpu1"})
            self.assertAlmostEqual(sum(r["cpus"]["cpu0"].values()), 1, 2)
            self.assertTrue(0 <= r["worker_runqueue_wait_share"] <= 1)
            nat = (r["public"]["tx_packets"] + r["private"]["tx_packets"]
                   - r["public"]["from_kernel"] - r["private"]["from_kernel"])
            self.assertEqual(r["nat_forwarded_packets"], nat)
            if r["kind"] == "idle":
                self.assertEqual(r["host_bound_packets"], 0)
            else:
                self.assertAlmostEqual(r["to_kernel_per_s"], 20000, delta=2000)
                self.assertGreater(r["kernel_drops_per_s"], 0)
                self.assertAlmostEqual(r["twin_rx_per_s"], r["to_kernel_per_s"], delta=0.1 * r["to_kernel_per_s"])
                self.assertAlmostEqual(r["host_bound_share_of_private_input"], 1 / 17, 3)
        idle = [r["nat_mpps"] for r in res["runs"] if r["kind"] == "idle"]
        flood = [r["nat_mpps"] for r in res["runs"] if r["kind"] == "flood"]
        self.assertEqual(res["idle"]["nat_mpps"]["runs"], idle)
        self.assertAlmostEqual(res["ratio_flooded_to_idle"], statistics.median(flood) / statistics.median(idle), 3)
        # The fixture is idle1 flood1 idle2 flood2 idle3 flood3 (before the closing idle run):
        # the last flooded run has only the idle run before it.
        want = [round(flood[0] / ((idle[0] + idle[1]) / 2), 4), round(flood[1] / ((idle[1] + idle[2]) / 2), 4),
                round(flood[2] / idle[2], 4)]
        self.assertEqual(res["bracket_ratios"], want)
        self.assertEqual(res["bracket_ratio_median"], statistics.median(want))
        self.assertEqual(len(res["bracket_ratios_per_cpu_second"]), 3)
        self.assertTrue(lines[-1].startswith("results: "))
        self.assertIn("flooded / idle", lines[-3])
        self.assertIn("either side", lines[-2])

    def test_target_is_reported_not_failed(self):
        # A benchmark, not a timed test: a flooded rate below target is a result, not a failure.
        res, lines = self.report("kflood-target-missed")
        self.assertTrue(res["ok"], res["errors"])
        self.assertFalse(res["target"]["met"])
        self.assertLess(res["ratio_flooded_to_idle"], 0.95)
        self.assertIn("MISSED", lines[-3])

    def test_what_fails(self):
        for case, want in (("kflood-host-bound-in-idle", "idle2: 500 host-bound packets in an idle run"),
                           ("kflood-no-drops", "flood1: no kernel_drops: the flood did not reach the limit"),
                           ("kflood-half-rate", "flood2: to_kernel"),
                           ("kflood-replies-miss", "flood3: reply hit ratio 0.95"),
                           ("kflood-twin-left", "flood1: the kernel twin was not seen removed"),
                           ("kflood-other-share", "the flood is not what was replayed"),
                           ("kflood-public-kernel", "idle1: the public port (no twin)")):
            with self.subTest(case=case):
                res, _ = self.report(case)
                self.assertFalse(res["ok"])
                self.assertTrue(any(want in e for e in res["errors"]), res["errors"])

    def test_needs_both_kinds(self):
        res, _ = self.report("kflood", runs=["idle1", "idle2"])
        self.assertIn("the invocation needs idle and flooded runs", res["errors"])
        self.assertIsNone(res["ratio_flooded_to_idle"])

    def test_bracket_ratios(self):
        runs = [{"kind": k, "x": x} for k, x in (("idle", 10), ("flood", 9), ("idle", 8), ("flood", 4),
                                                   ("idle", 0), ("flood", 5))]
        # 9 / mean(10, 8); 4 / 8 (the idle run after it has no rate); 5 has no idle neighbour with one.
        self.assertEqual(kflood.bracket_ratios(runs, "x"), [1.0, 0.5])

    def test_spread(self):
        self.assertEqual(kflood.spread([2.0, 1.0, 4.0]),
                         {"median": 2.0, "min": 1.0, "max": 4.0, "spread": 1.5, "runs": [2.0, 1.0, 4.0]})

    def test_cpu_accounting(self):
        with tempfile.TemporaryDirectory() as t:
            write(t, "a-cpustat.txt", "cpu0 10 0 10 80 0 0 0 0 0 0\ncpu1 0 0 0 100 0 0 0 0 0 0\n")
            write(t, "b-cpustat.txt", "cpu0 60 0 20 80 0 0 10 10 0 0\ncpu1 0 0 0 200 0 0 0 0 0 0\n")
            c = kflood.cpu_shares(kflood.cpustat(t, "a"), kflood.cpustat(t, "b"))
            self.assertEqual(c["cpu0"], {"user": 0.625, "nice": 0.0, "system": 0.125, "idle": 0.0,
                                         "iowait": 0.0, "irq": 0.0, "softirq": 0.125, "steal": 0.125})
            self.assertEqual(c["cpu1"]["idle"], 1.0)
            write(t, "a-sched.txt", "100 20 3\n5 5 1\n")
            self.assertEqual(kflood.sched(t, "a"), (105, 25))
            self.assertIsNone(kflood.sched(t, "missing"))
            self.assertIsNone(kflood.cpustat(t, "missing"))

    def test_twin_stats_unreadable(self):
        with tempfile.TemporaryDirectory() as t:
            self.assertIsNone(kflood.twin_stats(t, "x"))
            write(t, "x-twin.json", "[]")
            write(t, "x-twin-time.txt", "1 2\n")
            self.assertIsNone(kflood.twin_stats(t, "x"))


class LatencyGolden(Golden):
    """bench-latency.sh's row and report on synthetic counters."""

    ROWS = {
        # name: (before, after, duration, rate, generator stdout, preempted)
        "row-max": (lat_ports(100, 90, 0, [[500.0, 10], [1000.5, 5]]),
                    lat_ports(1000100, 1000090, 0, [[500.0, 1010], [1000.5, 905], [20000.25, 3]]),
                    "5", "0", 'EAL: x\n{"sent": 100, "sent_pps": 200000, "received": 99}\n', "12"),
        "row-paced": (lat_ports(0, 0, 1, [[300.0, 1]]),
                      lat_ports(20000, 19990, 4, [[300.0, 101], [600.0, 50], [900.0, 1]]),
                      "1.5", "13333", '{"sent": 20000, "sent_pps": 13000, "received": 19990}', ""),
        "row-empty": (lat_ports(5, 5, 0, []), lat_ports(5, 5, 0, []),
                      "1", "100", '{"sent": 0, "sent_pps": 0, "received": 0}', "0"),
    }

    def row(self, name):
        b, a, dur, rate, gen, pre = self.ROWS[name]
        with tempfile.TemporaryDirectory() as t:
            for n, v in (("a.json", b), ("b.json", a)):
                write(t, n, json.dumps(v))
            write(t, "gen.json", gen)
            return run_main(["latency-row", "--before", os.path.join(t, "a.json"), "--after",
                             os.path.join(t, "b.json"), "--duration", dur, "--rate", rate,
                             "--generator", os.path.join(t, "gen.json"), "--preempted", pre])

    def test_rows(self):
        for name in self.ROWS:
            with self.subTest(row=name):
                rc, out, err = self.row(name)
                self.assertEqual((rc, err), (0, ""))
                p = os.path.join(GOLDEN, "latency-" + name + ".out")
                if REGOLD:
                    write(GOLDEN, "latency-" + name + ".out", out)
                self.assertEqual(out, read(p))

    def test_row_values(self):
        r = json.loads(self.row("row-paced")[1])
        self.assertEqual(r["drops"], 3)
        self.assertEqual(r["drops_by_reason"], {"public:lb": 3})
        self.assertEqual(r["samples"], 151)
        self.assertEqual((r["p50_ns"], r["p99_ns"], r["p999_ns"], r["max_ns"]), (300.0, 600.0, 900.0, 900.0))
        self.assertEqual(r["worker_preempted"], 0)
        self.assertAlmostEqual(r["tx_pps"], 2 * 19990 / 1.5)
        r = json.loads(self.row("row-empty")[1])
        self.assertEqual((r["samples"], r["p50_ns"], r["max_ns"]), (0, 0.0, 0.0))

    @staticmethod
    def report_rows():
        gen = {"sent_pps": 1000000}
        mk = lambda rate, tx, lost, samples, sent: {  # noqa: E731
            "rate_asked": rate, "rx_pps": tx, "tx_pps": tx, "drops": lost,
            "drops_by_reason": {"private:tx_full": lost} if lost else {},
            "worker_preempted": 3, "samples": samples, "p50_ns": 700.25, "p99_ns": 5000.5,
            "p999_ns": 9000.0, "max_ns": 12000.75, "generator": dict(gen, sent_pps=sent)}
        return {
            "ok": ("10,50", [mk(0, 900000.0, 0, 100, 1000000), mk(90000, 90000.0, 0, 50, 90000),
                             mk(450000, 450000.0, 0, 70, 449000)]),
            "lost": ("10,50", [mk(0, 900000.0, 5, 100, 1000000), mk(90000, 90000.0, 2, 50, 90000),
                               mk(450000, 440000.0, 0, 70, 400000)]),
            "nothing": ("10", [mk(0, 0.0, 0, 0, 0), mk(0, 0.0, 0, 0, 0)]),
        }

    def test_reports(self):
        for name, (loads, rows) in self.report_rows().items():
            for smoke in ("0", "1"):
                case = f"latency-report-{name}-smoke{smoke}"
                with self.subTest(case=case), tempfile.TemporaryDirectory() as t:
                    files = []
                    for i, r in enumerate(rows):
                        write(t, f"row-{i}.json", json.dumps(r) + "\n")
                        files.append(os.path.join(t, f"row-{i}.json"))
                    out = os.path.join(t, "out.json")
                    node = self.golden_machine(case, "testhost")
                    with mock.patch("platform.node", return_value=node):
                        rc, so, se = run_main(["latency-report", "--out", out, "--conns", "256",
                                               "--loads", loads, "--smoke", smoke, "--command",
                                               "scripts/bench-latency.sh "] + files)
                    self.check(case, rc, so, se, read(out), out)

    def test_report_verdicts(self):
        rows = self.report_rows()
        res, lines, warnings = latency.latency_report(
            [dict(r) for r in rows["ok"][1]], "256", "10,50", False, "c", "h")
        self.assertTrue(res["ok"])
        self.assertEqual(warnings, [])
        self.assertEqual([r["load_percent"] for r in res["runs"]], [None, 10, 50])
        self.assertEqual(res["conns"], "256")
        res, _, warnings = latency.latency_report(
            [dict(r) for r in rows["lost"][1]], "256", "10,50", False, "c", "h")
        self.assertFalse(res["ok"])
        self.assertEqual(res["why"], [
            "10% load: rvs dropped 2 packets {'private:tx_full': 2}",
            "50% load: the generator offered only 400000 of 450000 pps (CPU contention?)"])
        res, _, warnings = latency.latency_report(
            [dict(r) for r in rows["lost"][1]], "256", "10,50", True, "c", "h")
        self.assertTrue(res["ok"])
        self.assertEqual(len(warnings), 2)
        res, _, _ = latency.latency_report(
            [dict(r) for r in rows["nothing"][1]], "256", "10", True, "c", "h")
        self.assertFalse(res["ok"])
        self.assertEqual(res["why"][0], "max load: nothing forwarded or no latency samples")


class HttpGolden(Golden):
    """bench-http.sh's report on synthetic wrk output."""

    CASES = {
        "both": {"rvs": wrk_output(), "kernel": wrk_output(20624, (10299, 10325), p50=15400, p99=37800)},
        "rvs-only": {"rvs": wrk_output()},
        "kernel-bad": {"kernel": wrk_output(100, (100, 0), other=4, errors={"read": 2, "timeout": 1, "status": 3},
                                               non_2xx=5)},
        "both-empty": {"rvs": wrk_output(0, (0, 0), p50=0, p99=0),
                       "kernel": wrk_output(0, (0, 0), p50=0, p99=0)},
    }

    def test_cases(self):
        for name, sides in self.CASES.items():
            case = "http-" + name
            with self.subTest(case=case), tempfile.TemporaryDirectory() as t:
                for s, txt in sides.items():
                    write(t, f"wrk-{s}.txt", txt)
                    write(t, f"cpu-{s}-before", "100 50 800 10 1000\n")
                    write(t, f"cpu-{s}-after", "400 250 1100 110 2000\n")
                write(t, "rvs-list.txt", "IP Virtual Server version 1.2.1 (size=4096)\nTCP  10.0.0.13:80 rr\n")
                write(t, "kernel-ruleset.txt", "table ip rvs_kdir {\n}\n")
                out = os.path.join(t, "out.json")
                machine = self.golden_machine(case, common.machine_info())
                with mock.patch.object(cli, "machine_info", return_value=machine):
                    rc, so, se = run_main(["http-report", "--work", t, "--out", out, "--command",
                                           "scripts/bench-http.sh --duration 10", "--vip", "10.0.0.13",
                                           "--duration", "10", "--warmup", "2", "--threads", "2",
                                           "--connections", "32", "--timeout", "5"] + list(sides))
                self.check(case, rc, so, se, read(out), out)

    def test_verdicts(self):
        w = http_report.http_side(wrk_output(), "0 0 0 0 0", "300 200 400 100 1000")
        self.assertEqual(w["cpu"], {"user": 0.3, "system": 0.2, "idle": 0.4, "irq_softirq": 0.1})
        self.assertEqual(w["requests_per_s"], round(18197 / 10.06, 1))
        self.assertEqual(http_report.http_errors("rvs", w), [])
        w = http_report.http_side(wrk_output(5, (5, 0), errors={"connect": 1}), "0 0 0 0 0", "0 0 0 0 0")
        self.assertEqual(w["cpu"]["idle"], 0.0)   # no CPU time counted: no division by zero
        self.assertEqual(http_report.http_errors("k", w), [
            "k: socket errors {'connect': 1, 'read': 0, 'write': 0, 'status': 0, 'timeout': 0}",
            "k: not both real servers answered {'RS1': 5, 'RS2': 0, 'other': 0}"])


class Manifest(unittest.TestCase):
    M = {"files": {"public": [{"path": "/w/pcap/public-q0.pcap", "packets": 256},
                              {"path": "/w/pcap/public-q1.pcap", "packets": 300}],
                   "private": [{"path": "/w/pcap/private-q0.pcap", "packets": 256}]},
         "gateway_mac": "02:00:00:00:00:01",
         "services": [{"proto": "udp", "vip": "10.0.0.13", "vport": 80, "rip": "192.168.8.14",
                       "rport": 80, "real_mac": "02:00:00:00:01:00"},
                      {"proto": "udp", "vip": "10.0.0.13", "vport": 80, "rip": "192.168.8.15",
                       "rport": 8080, "real_mac": "02:00:00:00:01:01"}]}

    def test_mempool_size(self):
        pkts, mbufs, mem = prep.mempool_size(self.M, 2)
        self.assertEqual(pkts, 812)
        self.assertEqual(mbufs, 812 + 8192 + 2 * 4096)
        self.assertEqual(mem, -(-mbufs * 2560 // (1 << 20)) + 256)
        # 1M flows of established-udp: 2M mbufs, ~5.3 GiB.
        big = {"files": {"public": [{"path": "p", "packets": 1 << 20}], "private": [{"path": "q", "packets": 1 << 20}]}}
        self.assertEqual(prep.mempool_size(big, 1), (2 << 20, (2 << 20) + 12288, 5150 + 256))

    def test_devargs_neighbours_dests(self):
        self.assertEqual(prep.pcap_devargs(self.M["files"]["public"]),
                         "rx_pcap=/w/pcap/public-q0.pcap,rx_pcap=/w/pcap/public-q1.pcap,infinite_rx=1")
        self.assertEqual(prep.pcap_devargs([]), "")
        self.assertEqual(prep.neighbours(self.M),
                         '"192.168.8.14" = "02:00:00:00:01:00", "192.168.8.15" = "02:00:00:00:01:01"')
        self.assertEqual(prep.edit_dests(self.M),
                         ["udp:10.0.0.13:80=192.168.8.14:80", "udp:10.0.0.13:80=192.168.8.15:8080"])

    def test_commands(self):
        with tempfile.TemporaryDirectory() as t:
            m = os.path.join(t, "manifest.json")
            write(t, "manifest.json", json.dumps(self.M))
            self.assertEqual(run_main(["mempool-size", m, "--workers", "1"])[1], "812 13100 288\n")
            self.assertEqual(run_main(["devargs", m, "private"])[1], "rx_pcap=/w/pcap/private-q0.pcap,infinite_rx=1\n")
            write(t, "m2.json", json.dumps(dict(self.M, files={"public": [], "private": []})))
            self.assertEqual(run_main(["devargs", os.path.join(t, "m2.json"), "private"])[1], "\n")
            self.assertEqual(run_main(["gateway-mac", m])[1], "02:00:00:00:00:01\n")
            self.assertEqual(run_main(["dests", m])[1],
                             "udp:10.0.0.13:80=192.168.8.14:80\nudp:10.0.0.13:80=192.168.8.15:8080\n")
            self.assertEqual(run_main(["neigh", m])[1], prep.neighbours(self.M) + "\n")


class Config(unittest.TestCase):
    TEMPLATE = os.path.join(SCRIPTS, "..", "dpdk-config", "bench.toml")

    def values(self, **over):
        v = dict(CPUS="0, 1", MEMORY_MB="288", NO_HUGE="false", FILE_PREFIX="rvs-bench-1",
                 PUBLIC_DEVARGS="rx_pcap=/w/p.pcap,infinite_rx=1", GATEWAY_MAC="02:00:00:00:00:01",
                 PRIVATE_DEVICE="net_pcap1", PRIVATE_DEVARGS="rx_pcap=/w/q.pcap,infinite_rx=1",
                 PRIVATE_NEIGHBOURS='"192.168.8.14" = "02:00:00:00:01:00"', WORKERS="1",
                 CONNECTIONS="4416", MBUFS="12800", SOCKET="/w/rvs.sock", RULES="/w/pcap/rules")
        v.update(over)
        return v

    def test_bench_template_as_bench_sh_always_wrote_it(self):
        text = read(self.TEMPLATE)
        v = self.values()
        want = text
        for k, x in v.items():   # the here-document's str.replace
            want = want.replace("@" + k + "@", x)
        self.assertEqual(config.fill_template(text, v), want)

    @unittest.skipIf(config.tomllib is None, "tomllib needs Python 3.11")
    def test_odd_paths_stay_valid_toml(self):
        odd = '/tmp/it\'s "a" \\path $HOME\t@RULES@ #x'
        t = config.fill_template(read(self.TEMPLATE), self.values(SOCKET=odd, RULES=odd + "/rules"))
        c = config.tomllib.loads(t)
        self.assertEqual(c["control"]["socket"], odd)
        self.assertEqual(c["rules"]["file"], odd + "/rules")
        self.assertEqual(c["eal"]["cpus"], [0, 1])
        self.assertIs(c["eal"]["no_huge"], False)
        self.assertEqual(c["private"]["neighbours"], {"192.168.8.14": "02:00:00:00:01:00"})
        self.assertEqual(c["tables"]["connections"], 4416)

    def test_placeholders_must_match(self):
        text = read(self.TEMPLATE)
        v = self.values()
        del v["RULES"]
        with self.assertRaisesRegex(ValueError, r"unfilled placeholder\(s\): @RULES@"):
            config.fill_template(text, v)
        with self.assertRaisesRegex(ValueError, "no placeholder for: EXTRA"):
            config.fill_template(text, self.values(EXTRA="1"))
        # A comment's @NAME@ is no placeholder.
        self.assertEqual(config.fill_template("# @NAME@ @X@\nx = @X@\n", {"X": "1"}), "# @NAME@ 1\nx = 1\n")

    def test_strings_inside_and_outside(self):
        t = 'a = "x=@V@,y"\nb = [@V@]\nc = { "k" = "@V@" }\n'
        self.assertEqual(config.fill_template(t, {"V": '1"2'}),
                         'a = "x=1\\"2,y"\nb = [1"2]\nc = { "k" = "1\\"2" }\n')

    def test_toml_escape(self):
        self.assertEqual(config.toml_escape('a"b\\c\nd\te\x01\x7fé'), 'a\\"b\\\\c\\nd\\te\\u0001\\u007Fé')
        if config.tomllib:
            s = 'a"b\\c\nd\te\x01\x7fé'
            self.assertEqual(config.tomllib.loads("k = " + config.toml_str(s))["k"], s)

    def test_write_config_command(self):
        with tempfile.TemporaryDirectory() as t:
            out = os.path.join(t, 'it\'s "out".toml')
            argv = ["write-config", self.TEMPLATE, out] + [f"{k}={v}" for k, v in self.values().items()]
            self.assertEqual(run_main(argv), (0, "", ""))
            self.assertEqual(read(out), config.fill_template(read(self.TEMPLATE), self.values()))
            with self.assertRaises(SystemExit) as e:
                run_main(["write-config", self.TEMPLATE, out, "CPUS"])
            self.assertIn("expected NAME=VALUE", str(e.exception))
            with self.assertRaises(SystemExit) as e:
                run_main(["write-config", self.TEMPLATE, out, "CPUS=1"])
            self.assertIn("unfilled placeholder", str(e.exception))
            if config.tomllib:
                with self.assertRaises(SystemExit) as e:
                    run_main(argv + ["CPUS=0,, 1"])
                self.assertIn("would not be valid TOML", str(e.exception))
            with mock.patch("sys.stdin", io.StringIO("a = @A@\n")):
                self.assertEqual(run_main(["write-config", "-", out, "A=2"])[0], 0)
            self.assertEqual(read(out), "a = 2\n")


class ConfigSet(unittest.TestCase):
    TEMPLATE = Config.TEMPLATE

    def test_keys_go_at_the_end_of_their_table(self):
        t = "[a]\nx = 1\n\n# about b\n[b]\ny = 2\n[c]\n"
        got = config.set_keys(t, [("a", "k", '"v"'), ("b", "n", "3"), ("c", "z", "4")])
        self.assertEqual(got, '[a]\nx = 1\nk = "v"\n\n# about b\n[b]\ny = 2\nn = 3\n[c]\nz = 4\n')
        self.assertEqual(config.set_keys("[a]\nx = 1", [("a", "k", "2")]), "[a]\nx = 1\nk = 2\n")
        with self.assertRaisesRegex(ValueError, r"no table \[d\]"):
            config.set_keys(t, [("d", "k", "1")])
        with self.assertRaisesRegex(ValueError, r"\[b\] already sets y"):
            config.set_keys(t, [("b", "y", "1")])

    def test_parse_set(self):
        self.assertEqual(config.parse_set("private.kernel_rate=20000"), ("private", "kernel_rate", "20000"))
        self.assertEqual(config.parse_set('private.kernel_interface=a"b'), ("private", "kernel_interface", '"a\\"b"'))
        for bad in ("private=1", "kernel_rate", ".k=1", "a b.k=1"):
            with self.subTest(bad=bad), self.assertRaises(SystemExit):
                config.parse_set(bad)

    def test_write_config_with_the_kernel_twin(self):
        with tempfile.TemporaryDirectory() as t:
            out = os.path.join(t, "rvs.toml")
            argv = (["write-config", "--set", "private.kernel_interface=rvsbk42", "--set",
                     "private.kernel_backend=auto", "--set", "private.kernel_rate=20000",
                     self.TEMPLATE, out] + [f"{k}={v}" for k, v in Config.values(self).items()])
            self.assertEqual(run_main(argv), (0, "", ""))
            plain = config.fill_template(read(self.TEMPLATE), Config.values(self))
            got = read(out)
            # The template's text, and three lines more at the end of [private].
            self.assertEqual([l for l in got.splitlines() if l not in plain.splitlines()],
                             ['kernel_interface = "rvsbk42"', 'kernel_backend = "auto"', "kernel_rate = 20000"])
            if config.tomllib:
                c = config.tomllib.loads(got)
                self.assertEqual(c["private"]["kernel_interface"], "rvsbk42")
                self.assertEqual(c["private"]["kernel_rate"], 20000)
                self.assertNotIn("kernel_interface", c["public"])


class Counters(unittest.TestCase):
    def test_snap_time_as_the_one_liners_printed_it(self):
        t0, t1, l0, l1 = "1796164567.003289500", "1796164567.067705909", "1796164567.072780", "1796164567.099872"
        s = counters.snap_time(t0, t1, l0, l1, "559247636")
        self.assertEqual(s, '{"t": %s, "read_s": %s, "tl": %s, "lread_s": %s, "worker_ns": 559247636}' % (
            (float(t0) + float(t1)) / 2, float(t1) - float(t0), (float(l0) + float(l1)) / 2, float(l1) - float(l0)))
        v = json.loads(s)
        self.assertAlmostEqual(v["read_s"], 0.0644164, 6)

    def test_cpu_share(self):
        self.assertEqual(counters.cpu_share("1000000000", "1500000000", "10.0", "11.0", "1"), 0.5)
        self.assertEqual(counters.cpu_share(0, 3 * 10**9, "0", "2", "2"), 0.75)
        self.assertEqual(run_main(["cpu-share", "0", "123456789", "1.5", "2.5", "1"])[1], '{"cpu_share": 0.1235}\n')

    def test_sum(self):
        self.assertEqual(run_main(["sum", "1", "5", "1"])[1], "7\n")
        self.assertEqual(run_main(["sum", "1", "1.5", "1"])[1], "3.5\n")

    def test_table_conns(self):
        listing = {"services": [{"stats": {"conns": 9}, "dests": [{"activeconns": 1, "inactconns": 2},
                                                                  {"activeconns": 3, "inactconns": 4}]},
                                {"stats": {"conns": 1}, "dests": []}]}
        self.assertEqual(counters.table_conns(listing), 10)
        self.assertEqual(counters.svc_conns(listing), 10)
        with mock.patch("sys.stdin", io.StringIO(json.dumps(listing))):
            self.assertEqual(run_main(["table-conns"])[1], "10\n")

    def test_port_deltas(self):
        def snap(rx, tx, drops):
            return {"ports": [{"role": r, "sw": {"rx_packets": rx, "tx_packets": tx, "handed_over": 1,
                                                 "drops": drops}, "hw": {"opackets": tx}}
                              for r in ("public", "private")]}
        d = counters.port_deltas(snap(10, 5, [["lb", 1], ["runt", 2]]),
                                 snap(110, 95, [["lb", 1], ["runt", 5], ["handover_full", 4]]))
        self.assertEqual(d["public"], {"rx_packets": 100, "tx_packets": 90, "handed_over": 0,
                                       "drops": {"runt": 3, "handover_full": 4}, "hw_opackets": 90})

    def test_kernel_deltas(self):
        def snap(**kv):
            return {"ports": [{"role": r, "sw": dict(kv)} for r in ("public", "private")]}
        d = counters.kernel_deltas(snap(), snap(to_kernel=5, kernel_drops=2))   # older snapshot: 0
        self.assertEqual(d["private"], {"to_kernel": 5, "from_kernel": 0, "kernel_drops": 2})

    def test_flag(self):
        self.assertIs(cli.flag("1"), True)
        self.assertIs(cli.flag("false"), False)
        with self.assertRaises(Exception):
            cli.flag("yes")


class ShellScripts(unittest.TestCase):
    """scripts/*.sh parse, and scripts/lib.sh's helpers do what the scripts rely on."""

    def bash(self, script):
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              cwd=os.path.dirname(SCRIPTS))

    def test_scripts_parse(self):
        for f in sorted(os.listdir(SCRIPTS)):
            if f.endswith(".sh"):
                with self.subTest(script=f):
                    r = subprocess.run(["bash", "-n", os.path.join(SCRIPTS, f)], capture_output=True, text=True)
                    self.assertEqual(r.returncode, 0, r.stderr)

    def test_lib(self):
        r = self.bash('PROG=x; . scripts/lib.sh; echo "$ROOT|$BENCHLIB"; a=3; positive_ints a; '
                      'benchlib sum 1 2; (die "bad --z"); echo "die $?"; (fail "broken"); echo "fail $?"; '
                      'b=0; (positive_ints a b); echo "pos $?"; c=x1; (positive_ints c); echo "pos $?"; warn w')
        root = os.path.realpath(os.path.dirname(SCRIPTS))
        self.assertEqual(r.stdout, f"{root}|{root}/scripts/benchlib.py\n3\ndie 2\nfail 1\npos 2\npos 2\n")
        self.assertEqual(r.stderr, "x: bad --z\nx: FAIL: broken\nx: --b must be a positive integer\n"
                                   "x: --c must be a positive integer\nx: warning: w\n")

    def test_lib_keeps_the_caller_alone(self):
        # Sourcing changes neither the working directory nor the shell options.
        r = self.bash('cd /tmp; set +e; . "$OLDPWD/scripts/lib.sh"; pwd; echo "$-"')
        self.assertEqual(r.stdout.splitlines()[0], "/tmp")
        self.assertNotIn("e", r.stdout.splitlines()[1])

    def test_help_is_the_header(self):
        for script, status in (("bench.sh", 2), ("bench-http.sh", 2), ("bench-latency.sh", 0)):
            with self.subTest(script=script):
                r = subprocess.run(["bash", os.path.join(SCRIPTS, script), "--help"], capture_output=True, text=True)
                self.assertEqual(r.returncode, status, r.stderr)
                self.assertIn("Usage: scripts/" + script, r.stdout)
                self.assertNotIn("set -euo", r.stdout)


if __name__ == "__main__":
    unittest.main()
