#!/usr/bin/env python3
"""Opens N TCP connections to HOST:PORT and holds them all open at once (each waits until every
connection attempt has finished), then sends an HTTP GET on each and reads each reply to the end, and prints a JSON summary: {"ok": n, "failed": n, "by_body": {"hello RS1": n, ...},
"errors": {...}}. Used by the lab tests for concurrency through the load balancer.

    conc_client.py 10.0.0.13 80 2000 [timeout_s]
"""
import asyncio
import collections
import json
import resource
import sys


async def one(host, port, timeout, barrier, res):
    try:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            barrier.connected += 1
        finally:
            barrier.arrive()
        await barrier.event.wait()
        if True:
            w.write(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
            await w.drain()
            data = await asyncio.wait_for(r.read(), timeout)
            w.close()
            body = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").strip()
            if data.startswith(b"HTTP/1.0 200"):
                res["ok"] += 1
                res["by_body"][body] += 1
            else:
                res["failed"] += 1
                res["errors"]["status " + data[:12].decode(errors="replace")] += 1
    except Exception as e:  # noqa: BLE001 - every failure is counted, none hidden
        res["failed"] += 1
        res["errors"][type(e).__name__] += 1


class Barrier:
    """Releases everyone once all n connection attempts are done (success or failure)."""

    def __init__(self, n):
        self.n, self.done, self.connected = n, 0, 0
        self.event = asyncio.Event()

    def arrive(self):
        self.done += 1
        if self.done >= self.n:
            self.event.set()


async def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    res = {"ok": 0, "failed": 0, "by_body": collections.Counter(),
           "errors": collections.Counter()}
    barrier = Barrier(n)
    await asyncio.gather(*(one(host, port, timeout, barrier, res) for _ in range(n)))
    # Every successful connection was open at the moment the barrier released.
    res["max_open"] = barrier.connected
    print(json.dumps(res))


asyncio.run(main())
