"""Exact resume after SIGKILL with 2 processes (ddp, fsdp, diloco), and SIGTERM under diloco (stop at an
outer step)."""

import json
import signal
import subprocess

import pytest
import torch
from conftest import (
    STRATEGY_STEPS,
    dist_config,
    kill_after_checkpoint,
    of,
    run_trainer,
    step_losses,
    trainer_cmd,
    write_config,
)

STEPS = STRATEGY_STEPS


@pytest.mark.parametrize("strategy", ["ddp", "fsdp", "diloco"])
def test_sigkill_then_resume_is_exact(tmp_path, validator, strategy, strategy_runs):
    reference = strategy_runs[strategy]  # the same config, never interrupted
    config = write_config(tmp_path, dist_config(tmp_path, strategy, STEPS))
    killed = kill_after_checkpoint(config, at_step=4)
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


def test_fsdp_checkpoint_of_two_ranks_resumes_on_one(tmp_path, validator, strategy_runs):
    """torch.distributed.checkpoint reshards the model and optimizer to the new world size. The global
    batches are the same (the data order does not depend on the ranks), so the losses continue,
    equal up to the reordering of the gradient sums."""
    reference = strategy_runs["fsdp"]
    saved = of(reference, "checkpoint")[0]
    cfg = dist_config(tmp_path, "fsdp", STEPS, procs=1)
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg), "--resume", saved["path"], timeout=240)
    assert rc == 0, stderr[-3000:]
    start = of(events, "start")[0]
    assert (start["resumed_from"], start["world_size"], saved["step"]) == (4, 1, 4)
    got, want = step_losses(events), step_losses(reference)
    assert sorted(got) == list(range(5, STEPS + 1))
    torch.testing.assert_close([got[s] for s in sorted(got)], [want[s] for s in sorted(got)])
    for event in events:
        validator.validate(event)


def test_diloco_refuses_another_world_size(tmp_path, strategy_runs):
    saved = of(strategy_runs["diloco"], "checkpoint")[0]["path"]
    cfg = dist_config(tmp_path, "diloco", STEPS, procs=1)
    rc, events, _ = run_trainer(write_config(tmp_path, cfg), "--resume", saved, timeout=240)
    assert rc == 2
    (error,) = of(events, "error")
    assert error["message"].startswith("distributed.nodes:") and "gpus_per_node = 1" in error["message"]


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
