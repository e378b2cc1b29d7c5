#!/usr/bin/env python3
"""A lab real server: HTTP on the given TCP ports (serving a directory, `index.html` says
"hello RSn") and a UDP responder, all in one process, run inside a real-server namespace by
scripts/lab.sh.

    lab-server.py --bind 192.168.8.14 --name RS1 --dir /run/rvs/www-rs1 --tcp 80 --udp 53

The HTTP listen backlog is large so thousands of concurrent connections through the load
balancer queue instead of being dropped. UDP: each datagram is answered with
"hello RSn <payload>" to its sender.
"""
import argparse
import functools
import http.server
import socket
import socketserver
import threading


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 4096
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that hangs without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):  # quiet: thousands of requests in tests
        pass


def udp_loop(bind, port, name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind, port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(b"hello " + name.encode() + b" " + data, peer)


def main():
    # Thousands of concurrent connections need more descriptors than the default 1024.
    try:
        import resource
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--tcp", type=int, action="append", default=[])
    ap.add_argument("--udp", type=int, action="append", default=[])
    a = ap.parse_args()
    handler = functools.partial(Handler, directory=a.dir)
    threads = []
    for port in a.tcp:
        srv = Server((a.bind, port), handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        threads.append(t)
    for port in a.udp:
        t = threading.Thread(target=udp_loop, args=(a.bind, port, a.name), daemon=True)
        t.start()
        threads.append(t)
    print(f"{a.name}: tcp {a.tcp} udp {a.udp} on {a.bind}", flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
