"""File helpers shared by the subcommands, and the machine every result records."""
import json
import os
import platform


def load_json(path):
    with open(path) as f:
        return json.load(f)


def read_text(path, **kw):
    with open(path, **kw) as f:
        return f.read()


def machine_info(proc="/proc"):
    """The machine a result was measured on: CPU model, online CPUs, kernel, load average."""
    with open(os.path.join(proc, "cpuinfo")) as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    return {
        "cpu": cpu,
        "online_cpus": os.cpu_count(), "kernel": platform.release(),
        "loadavg_at_end": read_text(os.path.join(proc, "loadavg")).split()[:3],
    }


def write_result(path, res, indent):
    with open(path, "w") as f:
        json.dump(res, f, indent=indent)
