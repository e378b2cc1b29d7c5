#!/usr/bin/env bash
# The demo: the seeds' LVS-NAT lab with rvs as the director.
#   - installs prerequisites and builds (first run takes a few minutes),
#   - builds the namespaces (client 10.0.0.12; real servers 192.168.8.14/.15 running HTTP),
#   - starts rvs (VIP 10.0.0.13 on the public port, DIP 192.168.8.13 on the private port),
#   - configures a round-robin virtual service with rvsadm, exactly as with ipvsadm,
#   - sends a few requests from the client through the VIP and shows the tables.
# The lab stays up afterwards: explore with `rvsadm -L -n`, `ip netns exec rvs-client curl
# http://10.0.0.13/`, and remove it with `scripts/lab.sh down`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
export PATH="${HOME:-/root}/.cargo/bin:$PATH"
cargo build --release --bins
bash scripts/lab.sh up "$@"
RVSADM=target/release/rvsadm
set -x
$RVSADM -A -t 10.0.0.13:80 -s rr
$RVSADM -a -t 10.0.0.13:80 -r 192.168.8.14:80 -m
$RVSADM -a -t 10.0.0.13:80 -r 192.168.8.15:80 -m
$RVSADM -L -n
set +x
for i in 1 2 3 4; do
    echo "client -> VIP request $i: $(ip netns exec rvs-client curl -s -m 3 http://10.0.0.13/)"
done
set -x
$RVSADM -L -n --stats
$RVSADM -L -n -c
$RVSADM --stats-ports
# The same numbers for Prometheus, under node_exporter's IPVS names ([metrics] in the lab's config).
curl -s -m 3 http://127.0.0.1:9642/metrics | grep '^node_ipvs'
