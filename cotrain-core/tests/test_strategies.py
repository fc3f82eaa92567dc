"""Every strategy with 2 CPU processes (gloo), launcher failure handling and multi-node env checks."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import (
    STRATEGY_STEPS,
    child_pids,
    dist_config,
    of,
    popen_trainer,
    rank_of,
    run_trainer,
    step_losses,
    trainer_cmd,
    write_config,
)

from cotrain_core.launch import free_port as launch_free_port

STEPS = STRATEGY_STEPS


@pytest.mark.parametrize("strategy", ["ddp", "fsdp", "diloco"])
def test_two_processes_train(strategy_runs, validator, strategy):
    events = strategy_runs[strategy]
    for event in events:
        validator.validate(event)
    start = of(events, "start")[0]
    assert start["world_size"] == 2 and start["strategy"] == strategy
    losses = [e["loss"] for e in of(events, "step")]
    assert len(losses) == STEPS and all(map(lambda x: x == x, losses))
    assert losses[-1] < losses[0]
    assert [e["step"] for e in of(events, "checkpoint")] == [4, 8]
    assert of(events, "done")[0]["step"] == STEPS


def test_ddp_and_fsdp_agree(strategy_runs):
    """Same data, init and optimizer: sharding must not change the numbers (beyond float reordering)."""
    ddp, fsdp = step_losses(strategy_runs["ddp"]), step_losses(strategy_runs["fsdp"])
    torch.testing.assert_close(torch.tensor(list(fsdp.values())), torch.tensor(list(ddp.values())))


def test_ddp_allreduces_gradients_once_per_step(strategy_runs):
    params = of(strategy_runs["ddp"], "start")[0]["parameters"]
    steps = of(strategy_runs["ddp"], "step")
    # 4 micro-batches per rank per step, no_sync on the first 3: one fp32 gradient all-reduce per step
    assert [e["allreduce_bytes"] for e in steps] == [4 * params * s for s in range(1, STEPS + 1)]


def test_diloco_syncs_every_inner_steps(strategy_runs):
    events = strategy_runs["diloco"]
    params = of(events, "start")[0]["parameters"]
    syncs = of(events, "sync")
    assert [(s["outer_step"], s["step"], s["participants"]) for s in syncs] == [(1, 4, 2), (2, 8, 2)]
    assert all(s["bytes"] == 4 * params for s in syncs)  # fp32 pseudo-gradients, once per outer step
    # no gradient traffic during inner steps; a step that ends with an outer step reports it (its
    # time and bytes are measured after the outer step)
    assert [e["allreduce_bytes"] for e in of(events, "step")] == [0] * 3 + [4 * params] * 4 + [8 * params]
    # the inner lr is the schedule's times inner_lr_scale, by default 1/sqrt(replicas) = 1/sqrt(2)
    ddp_lrs = [e["lr"] for e in of(strategy_runs["ddp"], "step")]
    torch.testing.assert_close([e["lr"] for e in of(events, "step")], [lr / 2**0.5 for lr in ddp_lrs])


def test_diloco_bf16_pseudo_gradients_halve_bytes(tmp_path, validator):
    cfg = dist_config(tmp_path, "diloco", steps=4, **{"distributed.diloco": {"pseudo_grad_dtype": "bf16"}})
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg), timeout=240)
    assert rc == 0, stderr[-3000:]
    params = of(events, "start")[0]["parameters"]
    assert [s["bytes"] for s in of(events, "sync")] == [2 * params]
    for event in events:
        validator.validate(event)


def test_multi_node_without_env_exits_2(tmp_path, monkeypatch):
    for key in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    cfg = dist_config(tmp_path, "ddp", distributed={"nodes": 2, "gpus_per_node": 1})
    rc, events, _ = run_trainer(write_config(tmp_path, cfg), timeout=60)
    assert rc == 2
    (error,) = of(events, "error")
    assert error["message"].startswith("distributed.nodes:") and "MASTER_ADDR" in error["message"]


def test_two_nodes_train_as_one_node_of_the_same_world(strategy_runs, tmp_path):
    """Two launchers meeting over loopback (as two hosts would): global rank 0's node reports the
    run and it trains exactly as 2 ranks on one node; the other node reports only its machine."""
    cfg = dist_config(tmp_path, "ddp", steps=STEPS, procs=1, distributed={"nodes": 2})
    config = write_config(tmp_path, cfg)
    port = str(launch_free_port())
    procs = []
    for node in (0, 1):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=port, NODE_RANK=str(node))
        env.pop("RANK", None)
        env.pop("WORLD_SIZE", None)
        procs.append(
            subprocess.Popen(
                trainer_cmd(config), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[1][1][-3000:]
    node0, node1 = ([json.loads(line) for line in out.splitlines()] for out, _ in outputs)
    assert of(node0, "start")[0]["world_size"] == 2
    assert step_losses(node0) == step_losses(strategy_runs["ddp"])
    assert {e["event"] for e in node1} == {"system"}


def test_rank_crash_stops_everything(tmp_path):
    cfg = dist_config(tmp_path, "ddp", steps=10_000)
    proc = popen_trainer(write_config(tmp_path, cfg))
    events, killed, ranks, started = [], None, [], time.monotonic()
    try:
        for line in proc.stdout:
            events.append(json.loads(line))
            if killed is None and events[-1]["event"] == "step" and events[-1]["step"] == 2:
                ranks = child_pids(proc.pid)
                (victim,) = [p for p in ranks if rank_of(p) == 1]
                os.kill(victim, signal.SIGKILL)
                killed = victim
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert killed is not None and rc not in (0, 2, 3, 4)
    assert time.monotonic() - started < 120
    *consequences, error = of(events, "error")
    assert error["retryable"] and "rank 1" in error["message"] and "SIGKILL" in error["message"]
    assert all(e["kind"] == "peer" for e in consequences)  # rank 0 only lost its peer
    assert not [p for p in ranks if _alive(p)]  # no rank left behind


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_gpu_bf16_reports_mfu(tmp_path, validator, strategy):
    cfg = dist_config(tmp_path, strategy, steps=4, procs=1, model={"precision": "bf16"})
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg), timeout=240)
    assert rc == 0, stderr[-3000:]
    assert all(0 < e["mfu"] < 1 for e in of(events, "step"))
    for event in events:
        validator.validate(event)


def test_launcher_and_ranks_exit_when_parent_dies(tmp_path):
    config = write_config(tmp_path, dist_config(tmp_path, "ddp", steps=10_000))
    cmd = " ".join(f"'{c}'" for c in trainer_cmd(config))
    # bash starts the launcher in the background and exits 6 s later, while the ranks are training
    subprocess.run(["bash", "-c", f"{cmd} >/dev/null 2>&1 & sleep 6"], timeout=60)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _trainers(config):
        time.sleep(0.2)
    left = _trainers(config)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "launcher or ranks kept running after the launcher's parent exited"


def _trainers(config) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if str(config).encode() in (proc / "cmdline").read_bytes() and _alive(int(proc.name)):
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def test_diloco_with_one_inner_step_and_plain_outer_sgd_is_data_parallel(tmp_path):
    """DiLoCo's identity: H = 1 with outer SGD (lr 1, no momentum) averages the workers' updates,
    which for a linear inner optimizer (SGD with momentum) is exactly a data-parallel step. The
    eval losses of the two runs must agree up to float rounding."""
    plain = {"train": {"optimizer": "sgd", "grad_clip": 0.0, "weight_decay": 0.0}}
    runs = {}
    for strategy in ("ddp", "diloco"):
        cfg = dist_config(tmp_path / strategy, strategy, steps=8, **plain)
        if strategy == "diloco":
            cfg["distributed.diloco"] = {
                "inner_steps": 1,
                "outer_lr": 1.0,
                "outer_momentum": 0.0,
                "nesterov": False,
                "inner_lr_scale": 1.0,  # the identity holds at the data-parallel lr
            }
        (tmp_path / strategy).mkdir()
        rc, events, stderr = run_trainer(write_config(tmp_path / strategy, cfg), timeout=240)
        assert rc == 0, stderr[-3000:]
        runs[strategy] = [(e["step"], e["loss"]) for e in of(events, "eval")]
    assert [s for s, _ in runs["diloco"]] == [s for s, _ in runs["ddp"]] == [4, 8]
    torch.testing.assert_close(
        torch.tensor([loss for _, loss in runs["diloco"]]),
        torch.tensor([loss for _, loss in runs["ddp"]]),
        rtol=1e-4,
        atol=1e-5,
    )
