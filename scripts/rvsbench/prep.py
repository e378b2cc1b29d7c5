"""Before a run, from rvs-pcapgen's manifest: mempool size, devargs, neighbours, edit dests."""
from .config import toml_str


def mempool_size(manifest, workers):
    """Mbufs and EAL memory for a replay: every replayed packet lives in an mbuf for the whole
    run, plus working room per worker."""
    pub = manifest["files"]["public"]
    priv = manifest["files"]["private"]
    pkts = sum(f["packets"] for f in pub + priv)
    mbufs = pkts + 8192 + 4096 * workers
    # ~2.4 KiB per mbuf (2176 B data room + mbuf header + mempool header), plus EAL's own needs.
    mem = (mbufs * 2560 + (1 << 20) - 1) // (1 << 20) + 256
    return pkts, mbufs, mem


def pcap_devargs(files):
    """net_pcap devargs replaying these files forever; empty when there are none."""
    if not files:
        return ""
    return ",".join("rx_pcap=" + f["path"] for f in files) + ",infinite_rx=1"


def neighbours(manifest):
    """The real servers as the body of a TOML inline table: "RIP" = "MAC", ..."""
    return ", ".join(f'{toml_str(s["rip"])} = {toml_str(s["real_mac"])}'
                     for s in manifest["services"])


def edit_dests(manifest):
    """ctl_edits.py's --dest values: SERVICE=REAL of each service of the traffic."""
    return [f'{s["proto"]}:{s["vip"]}:{s["vport"]}={s["rip"]}:{s["rport"]}'
            for s in manifest["services"]]
