#!/usr/bin/env python3
"""Drives an rvs control socket at a fixed rate of configuration edits, for the
reconfiguration-under-load benchmark (scripts/bench.sh --edits-per-sec N). It speaks the socket
protocol directly (docs/control-api.md: one JSON request per line, one JSON reply per line),
because spawning rvsadm a thousand times a second is far too slow.

    ctl_edits.py --socket /tmp/x/rvs.sock --dest udp:10.0.0.13:80=192.168.8.14:80 \
                 --rate 1000 --duration 10 --out edits.json

The edits never take traffic away from a connection: they cycle through
  - edit_dest of each --dest (the real servers the replayed replies come from, each given as
    SERVICE=REAL): weight 1..50, never 0, so they stay schedulable;
  - add_dest / edit_dest / delete_dest of an extra real server (--extra, default
    192.168.8.250) on the first --dest's service, added with weight 0 (quiesced: it is never
    scheduled);
  - add_service / add_dest / edit_dest / edit_service / delete_service of an unrelated service
    (--other, default tcp:10.0.0.13:8080, with real server 192.168.8.251:8080).
Every step of the cycle is valid after the previous one, so a correct daemon acknowledges all of
them: any error reply is counted and reported. Requests are pipelined on one connection (the
server answers them in order) with at most --window outstanding, and paced: request i is sent
at start + i / rate. When the daemon falls behind, requests queue up to the window and the
achieved rate (acknowledged edits per second) drops below the target.

At the end the starting configuration is put back (the reals' weights, the extra real server
and the unrelated service removed): not counted. A JSON summary goes to --out (and stdout):
target and achieved rate, sent/acked/errors, error samples, reply latency percentiles,
per-command counts. Exit status 0 if every edit was acknowledged, 1 otherwise, 2 on usage or
connection errors.
"""
import argparse
import json
import os
import selectors
import socket
import sys
import time


def parse_service(s):
    proto, addr, port = s.split(":")
    assert proto in ("tcp", "udp"), f"bad protocol in {s}"
    return {"proto": proto, "addr": addr, "port": int(port)}


def parse_real(s):
    addr, _, port = s.partition(":")
    return {"addr": addr, "port": int(port or 0)}


class Conn:
    """One control-socket connection with pipelined requests."""

    def __init__(self, path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, req):
        req = dict(req)
        req["v"] = 1
        self.s.sendall(json.dumps(req, separators=(",", ":")).encode() + b"\n")

    def recv_available(self):
        """Reads what is there (non-blocking); returns the complete reply lines."""
        self.s.setblocking(False)
        try:
            while True:
                try:
                    chunk = self.s.recv(1 << 16)
                except BlockingIOError:
                    break
                if not chunk:
                    raise ConnectionError("control socket closed by the daemon")
                self.buf += chunk
        finally:
            self.s.setblocking(True)
        *lines, self.buf = self.buf.split(b"\n")
        return [json.loads(l) for l in lines if l.strip()]

    def call(self, req):
        """One request, waiting for its reply (no pipelined requests may be outstanding)."""
        self.send(req)
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise ConnectionError("control socket closed by the daemon")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def cycle(targets, weights, extra, other, other_real):
    """The edit cycle: a list of requests, valid in order, ending where it began.
    targets: [(service, real)]; weights: their weights at the start."""
    service = targets[0][0]

    def edit_real(k, w):
        svc, real = targets[k]
        return {"cmd": "edit_dest", "service": svc, "dest": dict(real, weight=w)}

    other_conf = dict(other, sched="wlc")
    other_rr = dict(other, sched="rr")
    steps = [
        {"cmd": "add_service", "service": other_conf},
        {"cmd": "add_dest", "service": other, "dest": dict(other_real, weight=1)},
        {"cmd": "add_dest", "service": service, "dest": dict(extra, weight=0)},
        {"cmd": "edit_dest", "service": other, "dest": dict(other_real, weight=3)},
        {"cmd": "edit_service", "service": other_rr},
        {"cmd": "edit_dest", "service": service, "dest": dict(extra, weight=0, u_threshold=100)},
        {"cmd": "delete_dest", "service": service, "dest": extra},
        {"cmd": "delete_service", "service": other},
    ]
    # An edit of a live real server before every structural step: half of the edits touch the
    # servers the traffic is on.
    ops = []
    for n, st in enumerate(steps):
        k = n % len(targets)
        ops.append(edit_real(k, 1 + (weights[k] + n) % 50))
        ops.append(st)
    return ops


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--dest", action="append", required=True,
                    help="proto:vip:vport=rip:rport, a real server carrying the traffic (repeat)")
    ap.add_argument("--extra", default="192.168.8.250", help="extra real server added/removed")
    ap.add_argument("--other", default="tcp:10.0.0.13:8080", help="unrelated service added/removed")
    ap.add_argument("--other-real", default="192.168.8.251:8080")
    ap.add_argument("--rate", type=float, required=True, help="edits per second")
    ap.add_argument("--duration", type=float, required=True, help="seconds")
    ap.add_argument("--window", type=int, default=64, help="most requests outstanding")
    ap.add_argument("--out", help="write the JSON summary here too")
    ap.add_argument("--ready-file", help="touched once the first edit is acknowledged")
    a = ap.parse_args()
    if a.rate <= 0 or a.duration <= 0 or a.window < 1:
        ap.error("--rate, --duration and --window must be positive")

    targets = []
    for d in a.dest:
        sv, _, rl = d.partition("=")
        if not rl:
            ap.error(f"--dest {d}: expected proto:vip:vport=rip:rport")
        targets.append((parse_service(sv), parse_real(rl)))
    service = targets[0][0]
    extra = parse_real(a.extra)
    other = parse_service(a.other)
    other_real = parse_real(a.other_real)
    if any(other == t[0] for t in targets):
        ap.error("--other must differ from the --dest services")

    try:
        c = Conn(a.socket)
        # The current settings of the real servers (to restore them), and a check that they
        # exist.
        lst = c.call({"cmd": "list"})
    except (OSError, ConnectionError, ValueError) as e:
        print(f"ctl_edits: {a.socket}: {e}", file=sys.stderr)
        return 2
    if not lst.get("ok"):
        print(f"ctl_edits: list: {lst.get('error')}", file=sys.stderr)
        return 2

    def find_svc(ref):
        return next((x for x in lst["data"]["services"]
                     if (x["proto"], x["addr"], x["port"]) == (ref["proto"], ref["addr"], ref["port"])), None)

    orig = []
    for sv, r in targets:
        svc = find_svc(sv)
        port = r["port"] or sv["port"]
        d = svc and next((x for x in svc["dests"] if x["addr"] == r["addr"] and x["port"] == port), None)
        if d is None:
            print(f"ctl_edits: no real server {r['addr']}:{port} in service "
                  f"{sv['proto']}:{sv['addr']}:{sv['port']}", file=sys.stderr)
            return 2
        orig.append(d)
    if any(x["addr"] == extra["addr"] for x in find_svc(service)["dests"]):
        print(f"ctl_edits: --extra {a.extra} is already a real server of the first service", file=sys.stderr)
        return 2
    if find_svc(other):
        print(f"ctl_edits: --other {a.other} already exists", file=sys.stderr)
        return 2
    ops = cycle(targets, [d["weight"] for d in orig], extra, other, other_real)

    sel = selectors.DefaultSelector()
    sel.register(c.s, selectors.EVENT_READ)
    period = 1.0 / a.rate
    sent = acked = errors = 0
    pending = []  # (send time, cmd) in order: replies come back in order
    lat = []
    by_cmd = {}
    err_samples = {}
    behind_max = 0.0
    ready_touched = False
    t0 = time.monotonic()
    end = t0 + a.duration

    def take_replies():
        nonlocal acked, errors, ready_touched
        now = time.monotonic()
        for r in c.recv_available():
            ts, cmd = pending.pop(0)
            lat.append(now - ts)
            if r.get("ok"):
                acked += 1
                by_cmd[cmd] = by_cmd.get(cmd, 0) + 1
                if a.ready_file and not ready_touched:
                    open(a.ready_file, "w").close()
                    ready_touched = True
            else:
                errors += 1
                k = f"{cmd}: {r.get('error')}"
                err_samples[k] = err_samples.get(k, 0) + 1

    try:
        while True:
            now = time.monotonic()
            if now >= end:
                break
            due = t0 + sent * period
            if now >= due and len(pending) < a.window:
                behind_max = max(behind_max, now - due)
                req = ops[sent % len(ops)]
                c.send(req)
                pending.append((now, req["cmd"]))
                sent += 1
                continue
            # Wait for replies until the next send is due (or a reply frees the window).
            wait = max(0.0, min(due, end) - now) if len(pending) < a.window else max(0.0, end - now)
            if pending:
                if sel.select(timeout=wait):
                    take_replies()
            elif wait > 0:
                time.sleep(wait)
        t_send_end = time.monotonic()
        # Collect the replies still due.
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                take_replies()
        t_end = time.monotonic()
        lost_replies = len(pending)
        # Undo: the cycle may have stopped anywhere. Errors here are expected (an object that
        # was not there) and not counted.
        undo = [{"cmd": "delete_dest", "service": service, "dest": extra},
                {"cmd": "delete_service", "service": other}]
        for (sv, r), d in zip(targets, orig):
            undo.append({"cmd": "edit_dest", "service": sv,
                         "dest": dict(r, weight=d["weight"], u_threshold=d["u_threshold"],
                                      l_threshold=d["l_threshold"])})
        restore_errors = []
        if not pending:
            for u in undo:
                r = c.call(u)
                if not r.get("ok") and u["cmd"] == "edit_dest":
                    restore_errors.append(f"{u['cmd']}: {r.get('error')}")
    except (OSError, ConnectionError, ValueError) as e:
        print(f"ctl_edits: control socket failed after {sent} requests: {e}", file=sys.stderr)
        return 2

    elapsed = t_send_end - t0
    res = {
        "target_per_s": a.rate,
        "duration_s": round(elapsed, 3),
        "sent": sent,
        "acked": acked,
        "errors": errors,
        "unanswered": lost_replies,
        "achieved_per_s": round(acked / (t_end - t0), 1) if t_end > t0 else 0,
        "sent_per_s": round(sent / elapsed, 1) if elapsed > 0 else 0,
        "max_send_lag_ms": round(behind_max * 1e3, 3),
        "reply_ms": {
            "p50": round(pct(lat, 50) * 1e3, 3) if lat else None,
            "p99": round(pct(lat, 99) * 1e3, 3) if lat else None,
            "max": round(max(lat) * 1e3, 3) if lat else None,
        },
        "by_cmd": by_cmd,
        "error_samples": err_samples,
        "restore_errors": restore_errors,
        "window": a.window,
        "cycle_len": len(ops),
    }
    txt = json.dumps(res, indent=2)
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(txt + "\n")
        os.replace(tmp, a.out)
    print(txt)
    return 0 if errors == 0 and lost_replies == 0 and sent > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
