"""Exact resume after SIGKILL with 2 processes, and SIGTERM under diloco (stop at an outer step)."""

import json
import os
import signal
import subprocess

import pytest
from conftest import (
    STRATEGY_STEPS,
    dist_config,
    of,
    popen_trainer,
    run_trainer,
    step_losses,
    trainer_cmd,
    write_config,
)

STEPS = STRATEGY_STEPS


def _kill_after_checkpoint(config, at_step: int) -> list[dict]:
    """Run until the checkpoint of `at_step` and a later step were reported, then SIGKILL everything."""
    proc = popen_trainer(config)
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        ckpts = [e["step"] for e in of(events, "checkpoint")]
        if at_step in ckpts and events[-1]["event"] == "step" and events[-1]["step"] > at_step:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=30)
    return events


@pytest.mark.parametrize("strategy", ["ddp", "diloco"])
def test_sigkill_then_resume_is_exact(tmp_path, validator, strategy, strategy_runs):
    reference = strategy_runs[strategy]  # the same config, never interrupted
    config = write_config(tmp_path, dist_config(tmp_path, strategy, STEPS))
    killed = _kill_after_checkpoint(config, at_step=4)
    assert not of(killed, "done")
    rc, resumed, stderr = run_trainer(config, timeout=240)
    assert rc == 0, stderr[-3000:]
    start = of(resumed, "start")[0]["resumed_from"]
    assert start in (4, 8)  # 8 when the kill came after the last checkpoint
    got, want = step_losses(resumed), step_losses(reference)
    assert sorted(got) == list(range(start + 1, STEPS + 1))
    assert [got[s] for s in sorted(got)] == [want[s] for s in sorted(got)]  # bitwise on CPU
    assert of(resumed, "done")[0]["eval_loss"] == of(reference, "done")[0]["eval_loss"]
    if strategy == "diloco":
        assert [s["outer_step"] for s in of(resumed, "sync")] == list(range(start // 4 + 1, STEPS // 4 + 1))
    for event in killed + resumed:
        validator.validate(event)


def test_sigterm_under_diloco_stops_at_outer_step(tmp_path):
    cfg = dist_config(tmp_path, "diloco", steps=10_000, checkpoint={"interval": 0})
    proc = subprocess.Popen(
        trainer_cmd(write_config(tmp_path, cfg)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "step" and events[-1]["step"] == 5:
            proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 4
    last = of(events, "step")[-1]["step"]
    assert last % 4 == 0 and of(events, "checkpoint")[-1]["step"] == last
    assert of(events, "sync")[-1]["step"] == last and not of(events, "done")
