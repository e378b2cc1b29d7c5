"""Counter arithmetic: port deltas (the exception path's apart), connection counts, snapshot
times, CPU share, sum; a measured window between two snapshots."""
import os

from .common import load_json


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


KERNEL_KEYS = ("to_kernel", "from_kernel", "kernel_drops")


def kernel_deltas(b, a):
    """The exception path's counter deltas per port (0 where a snapshot predates them)."""
    return {role: {k: port(a, role)["sw"].get(k, 0) - port(b, role)["sw"].get(k, 0)
                   for k in KERNEL_KEYS}
            for role in ("public", "private")}


def window(work, workers, bn, an):
    """The forwarding of one window between two snapshots (bench.sh's snap NAME): its length,
    the workers' CPU share, the port deltas, forwarded and received packets, Mpps, Mpps per
    worker CPU-second, packets lost (drop counters but handover_full), overload drops
    (handover_full) and packets unaccounted for."""
    def load(name):
        return load_json(os.path.join(work, name))

    def lost_of(dd):
        return sum(v for r in ("public", "private") for k, v in dd[r]["drops"].items()
                   if k != "handover_full")

    def over_of(dd):
        return sum(dd[r]["drops"].get("handover_full", 0) for r in ("public", "private"))

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
