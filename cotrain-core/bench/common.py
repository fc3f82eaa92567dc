"""Shared helpers of the benchmarks: write a config, run the trainer, time its events."""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from conftest import base_config, write_config  # noqa: E402


def machine() -> str:
    try:
        import torch

        dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        tv = torch.__version__
    except ImportError:
        dev, tv = "?", "?"
    cores = len(os.sched_getaffinity(0))
    return f"{platform.machine()} {cores} cores, {dev}, torch {tv}, python {platform.python_version()}"


def config(tmp: Path, **overrides) -> Path:
    cfg = base_config(tmp, checkpoint={"interval": 0, "output_path": str(tmp / "ckpt")})
    for section, values in overrides.items():
        cfg.setdefault(section, {}).update(values)
    return write_config(tmp, cfg)


def run(config_path: Path, timeout: float = 1800) -> tuple[int, list[tuple[float, dict]]]:
    """Run the trainer; returns (exit code, [(arrival time, event)])."""
    cmd = [sys.executable, "-m", "cotrain_core.train", "--config", str(config_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    events = [(time.perf_counter(), json.loads(line)) for line in proc.stdout]
    return proc.wait(timeout=timeout), events


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="cotrain-bench-"))
