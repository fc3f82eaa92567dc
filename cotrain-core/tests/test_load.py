"""The load-generating mode: `python -m cotrain_core.train` with [load] emits the protocol's events
at the configured rate, without a model and without importing torch."""

import json
import signal
import subprocess
import sys
import time

from conftest import base_config, of, run_trainer, trainer_cmd, write_config


def load_config(tmp_path, steps=20, rate=40.0, interval=10):
    return base_config(
        tmp_path,
        train={"max_steps": steps},
        checkpoint={"interval": interval, "output_path": str(tmp_path / "ckpt")},
        load={"events_per_second": rate},
    )


def test_emits_start_each_step_checkpoints_and_done_at_the_rate(tmp_path, validator):
    config = write_config(tmp_path, load_config(tmp_path, steps=20, rate=40.0))
    proc = subprocess.Popen(trainer_cmd(config), stdout=subprocess.PIPE, text=True)
    received = [(time.monotonic(), json.loads(line)) for line in proc.stdout]
    assert proc.wait(timeout=60) == 0
    events = [e for _, e in received]
    for event in events:
        validator.validate(event)
    assert [e["event"] for e in events] == (
        ["start"] + ["step"] * 10 + ["checkpoint"] + ["step"] * 10 + ["done"]
    )
    start = events[0]
    assert start["load"] == {"events_per_second": 40.0}
    assert start["total_steps"] == 20 and start["parameters"] == 0 and start["resumed_from"] is None
    assert [e["step"] for e in of(events, "step")] == list(range(1, 21))
    assert of(events, "checkpoint")[0]["path"] == str(tmp_path / "ckpt" / "step-10")
    assert (tmp_path / "ckpt" / "step-10" / "manifest.json").is_file()
    done = events[-1]
    assert done["step"] == 20 and (tmp_path / "final" / "load.json").is_file()
    # Paced, not a burst: 20 steps at 40/s span at least 19/40 s (the schedule is absolute).
    steps_at = [at for at, e in received if e["event"] == "step"]
    assert steps_at[-1] - steps_at[0] >= 19 / 40 * 0.9


def test_never_imports_torch(tmp_path):
    config = write_config(tmp_path, load_config(tmp_path, steps=2, rate=100.0))
    command = [sys.executable, "-X", "importtime", *trainer_cmd(config)[1:]]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    assert "cotrain_core.load" in imported
    assert not [name for name in imported if name.split(".")[0] in ("torch", "transformers", "numpy")]


def test_sigterm_checkpoints_exits_4_and_a_rerun_continues(tmp_path, validator):
    config = write_config(tmp_path, load_config(tmp_path, steps=400, rate=50.0, interval=0))
    proc = subprocess.Popen(trainer_cmd(config), stdout=subprocess.PIPE, text=True)
    first = []
    for line in proc.stdout:
        first.append(json.loads(line))
        if first[-1]["event"] == "step" and first[-1]["step"] == 5:
            proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 4
    stopped_at = of(first, "checkpoint")[-1]["step"]
    assert stopped_at == of(first, "step")[-1]["step"] >= 5

    rest = load_config(tmp_path, steps=stopped_at + 3, rate=50.0, interval=0)
    rc, events, stderr = run_trainer(write_config(tmp_path, rest, "rest.toml"))
    assert rc == 0, stderr
    for event in events:
        validator.validate(event)
    assert of(events, "start")[0]["resumed_from"] == stopped_at
    assert [e["step"] for e in of(events, "step")] == [stopped_at + 1, stopped_at + 2, stopped_at + 3]


def test_needs_max_steps(tmp_path):
    cfg = load_config(tmp_path)
    cfg["train"]["max_steps"] = 0
    rc, events, _ = run_trainer(write_config(tmp_path, cfg))
    assert rc == 2
    assert of(events, "error")[0]["message"].startswith("train.max_steps: the load generator")
