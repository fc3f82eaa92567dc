"""Helpers: write a TOML config and run the trainer as a subprocess, collecting its events."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "docs" / "schema" / "events.schema.json"


def base_config(tmp_path: Path, **overrides) -> dict:
    """A fast debug config; overrides look like train={"max_steps": 10}."""
    cfg = {
        "run": {
            "session_id": "test-session",
            "name": 'a "test" run\nwith [brackets]',
            "final_path": str(tmp_path / "final"),
        },
        "model": {"type": "llama2", "size": "debug", "precision": "fp32"},
        "train": {
            "batch_size": 8,
            "learning_rate": 0.003,
            "epochs": 1,
            "max_steps": 120,
            "optimizer": "adamw",
            "seed": 1234,
        },
        "distributed": {"nodes": 1, "gpus_per_node": 1, "strategy": "ddp"},
        "data": {"seq_length": 64, "data_path": ""},
        "checkpoint": {"interval": 20, "output_path": str(tmp_path / "ckpt")},
    }
    for section, values in overrides.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


def to_toml(cfg: dict) -> str:
    """Minimal TOML writer: JSON string/number/bool literals are valid TOML."""
    lines = []
    for section, table in cfg.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
        lines.append("")
    return "\n".join(lines)


def write_config(tmp_path: Path, cfg: dict, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(to_toml(cfg))
    return path


def trainer_cmd(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cotrain_core.train", "--config", str(config), *extra]


def run_trainer(config: Path, *extra: str, timeout: float = 300):
    """Run to completion; returns (exit code, list of events, stderr)."""
    proc = subprocess.run(trainer_cmd(config, *extra), capture_output=True, text=True, timeout=timeout)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, events, proc.stderr


def of(events, kind: str) -> list[dict]:
    return [e for e in events if e["event"] == kind]


def step_losses(events) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in of(events, "step")}


@pytest.fixture(scope="session")
def validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
    """One uninterrupted 120-step run (checkpoints every 20 steps) shared by several tests."""
    tmp_path = tmp_path_factory.mktemp("reference")
    cfg = base_config(tmp_path)
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg))
    assert rc == 0, stderr
    return {"cfg": cfg, "events": events, "tmp_path": tmp_path}


def dist_config(tmp_path: Path, strategy: str, steps: int = 12, procs: int = 2, **overrides) -> dict:
    """A tiny multi-process config: `procs` CPU ranks (gloo), checkpoints every 4 steps."""
    cfg = base_config(
        tmp_path,
        train={"max_steps": steps, "batch_size": 8, "micro_batch_size": 2},
        distributed={"nodes": 1, "gpus_per_node": procs, "strategy": strategy},
        data={"seq_length": 32, "data_path": ""},
        checkpoint={"interval": 4, "output_path": str(tmp_path / "ckpt")},
    )
    if strategy == "diloco":
        cfg["distributed.diloco"] = {"inner_steps": 4, "island_size": 1}  # every rank a replica
    for section, values in overrides.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


def popen_trainer(config: Path, *extra: str) -> subprocess.Popen:
    """Start the trainer in its own session so the whole process tree can be SIGKILLed."""
    return subprocess.Popen(
        trainer_cmd(config, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def kill_after_checkpoint(config, at_step: int) -> list[dict]:
    """Run until the checkpoint of `at_step` and a later step were reported, then SIGKILL everything.
    (Checkpoints are committed in the background: the `checkpoint` event may follow later steps.)"""
    proc = popen_trainer(config)
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        ckpts = [e["step"] for e in of(events, "checkpoint")]
        # in either order: a checkpoint can be committed after later steps, even after the last one
        if at_step in ckpts and max(e["step"] for e in of(events, "step")) > at_step:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=30)
    return events


def child_pids(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return None


STRATEGY_STEPS = 8


@pytest.fixture(scope="session")
def strategy_runs(tmp_path_factory):
    """One uninterrupted 8-step run of each strategy with 2 ranks (shared by strategy and resume tests)."""
    results = {}
    for strategy in ("ddp", "fsdp", "diloco"):
        tmp = tmp_path_factory.mktemp(strategy)
        rc, events, stderr = run_trainer(
            write_config(tmp, dist_config(tmp, strategy, steps=STRATEGY_STEPS)), timeout=240
        )
        assert rc == 0, stderr[-3000:]
        results[strategy] = events
    return results


@pytest.fixture
def one_thread():
    """In-process torch on one thread: spinning OpenMP threads stall when other processes share cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
