"""System metrics for the `system` event: psutil when installed, else /proc (Linux).

    sample = system.sample()   # {cpu_percent, rss_bytes, disk_read_bytes, ..., gpus: [...]}

CPU percent is this process (and its children) since the previous sample, 100 = one core.
Disk and network counters are machine-wide totals since boot (diff consecutive events for rates).
"""

import os
import time
from pathlib import Path

_last = {"t": None, "cpu": None}


def _proc_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _rss_bytes() -> int:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        pass
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _disk_bytes() -> tuple[int, int]:
    try:
        import psutil

        c = psutil.disk_io_counters()
        return (c.read_bytes, c.write_bytes) if c else (0, 0)
    except ImportError:
        pass
    read = write = 0
    try:
        for line in Path("/proc/diskstats").read_text().splitlines():
            f = line.split()
            name = f[2]
            if name.startswith(("loop", "ram", "dm-")) or (
                name[-1].isdigit() and not name.startswith("nvme")
            ):
                continue  # partitions and virtual devices would double count
            if name.startswith("nvme") and "p" in name[4:]:
                continue
            read += int(f[5]) * 512
            write += int(f[9]) * 512
    except (OSError, IndexError, ValueError):
        pass
    return read, write


def _net_bytes() -> tuple[int, int]:
    try:
        import psutil

        c = psutil.net_io_counters()
        return (c.bytes_sent, c.bytes_recv) if c else (0, 0)
    except ImportError:
        pass
    sent = recv = 0
    try:
        for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
            name, rest = line.split(":", 1)
            if name.strip() == "lo":
                continue
            f = rest.split()
            recv += int(f[0])
            sent += int(f[8])
    except (OSError, IndexError, ValueError):
        pass
    return sent, recv


def _gpus() -> list[dict]:
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        gpus = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            try:
                util = float(torch.cuda.utilization(i))
            except Exception:  # needs pynvml; leave it out
                util = None
            gpus.append(
                {
                    "index": i,
                    "utilization": util,
                    "memory_used_bytes": total - free,
                    "memory_total_bytes": total,
                }
            )
        return gpus
    except Exception:
        return []


def sample() -> dict:
    now, cpu = time.monotonic(), _proc_cpu_seconds()
    if _last["t"] is None or now <= _last["t"]:
        percent = 0.0
    else:
        percent = 100.0 * (cpu - _last["cpu"]) / (now - _last["t"])
    _last.update(t=now, cpu=cpu)
    disk_r, disk_w = _disk_bytes()
    net_s, net_r = _net_bytes()
    return dict(
        cpu_percent=round(max(percent, 0.0), 1),
        rss_bytes=_rss_bytes(),
        disk_read_bytes=disk_r,
        disk_write_bytes=disk_w,
        net_sent_bytes=net_s,
        net_recv_bytes=net_r,
        gpus=_gpus(),
    )
