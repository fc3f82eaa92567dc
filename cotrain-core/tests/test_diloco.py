"""DiLoCo on GPU clusters: process groups that carry CPU collectives, islands, streaming, quantization."""

import pytest
import torch
import torch.distributed as dist
from conftest import (
    STRATEGY_STEPS,
    base_config,
    dist_config,
    kill_after_checkpoint,
    of,
    run_trainer,
    step_losses,
    write_config,
)

from cotrain_core import distributed
from cotrain_core.config import config_from_dict
from cotrain_core.launch import RankEnv

STEPS = STRATEGY_STEPS


def test_gpu_process_group_also_carries_cpu_collectives(tmp_path, monkeypatch):
    """With CUDA present the default group must take CPU tensors too (DiLoCo all-reduces CPU
    pseudo-gradients): what init_distributed asks for on a faked 2-GPU machine maps cpu to gloo."""
    requested = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: requested.update(backend=backend))
    threads = torch.get_num_threads()
    cfg = config_from_dict(base_config(tmp_path, distributed={"gpus_per_node": 2}))
    ctx, _ = distributed.init_distributed(
        cfg, RankEnv(rank=1, world_size=2, local_rank=1, local_world_size=2)
    )
    torch.set_num_threads(threads)
    assert ctx.device == torch.device("cuda", 1)
    devices = dist.distributed_c10d.BackendConfig(requested["backend"]).get_device_backend_map()
    assert devices == {"cpu": "gloo", "cuda": "nccl"}
    assert distributed.backend(cuda=False) == "gloo"


def test_island_size_defaults_to_one_island_per_node(tmp_path):
    raw = base_config(tmp_path, distributed={"nodes": 2, "gpus_per_node": 4, "strategy": "diloco"})
    raw["distributed"]["diloco"] = {"inner_steps": 20}
    cfg = config_from_dict(raw)
    assert (cfg.distributed.diloco.island_size, cfg.islands, cfg.distributed.diloco.inner_strategy) == (
        4,
        2,
        "fsdp",
    )


ISLANDS = {"island_size": 2, "inner_strategy": "fsdp"}


@pytest.fixture(scope="module")
def islands_run(tmp_path_factory):
    """4 CPU ranks as 2 islands x 2 (fsdp inside an island), uninterrupted."""
    tmp = tmp_path_factory.mktemp("islands")
    cfg = dist_config(tmp, "diloco", steps=STEPS, procs=4, **{"distributed.diloco": ISLANDS})
    rc, events, stderr = run_trainer(write_config(tmp, cfg), timeout=300)
    assert rc == 0, stderr[-3000:]
    return events


def test_two_islands_of_two_train_one_replica_each(islands_run, strategy_runs, tmp_path, validator):
    """An island is one replica: 2 islands x 2 ranks (fsdp or ddp inside) train what 2 ranks as 2
    islands x 1 train (the same data per replica; float tolerance). Only the pseudo-gradient of a
    rank's half of the model crosses islands, between the 2 ranks that hold that half."""
    for event in islands_run:
        validator.validate(event)
    params = of(islands_run, "start")[0]["parameters"]
    syncs = of(islands_run, "sync")
    assert [(s["outer_step"], s["participants"], s["bytes"]) for s in syncs] == [
        (1, 2, 2 * params),  # fp32, half of the (evenly sharded) debug model per rank
        (2, 2, 2 * params),
    ]
    one = of(strategy_runs["diloco"], "done")[0]["eval_loss"]
    assert of(islands_run, "done")[0]["eval_loss"] == pytest.approx(one, rel=1e-5)
    cfg = dist_config(
        tmp_path,
        "diloco",
        steps=STEPS,
        procs=4,
        **{"distributed.diloco": {**ISLANDS, "inner_strategy": "ddp"}},
    )
    cfg["checkpoint"]["interval"] = 0
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg), timeout=300)
    assert rc == 0, stderr[-3000:]
    assert [s["bytes"] for s in of(events, "sync")] == [2 * params] * 2  # chunk 1 of 2 of the flat vector
    torch.testing.assert_close(
        torch.tensor(list(step_losses(events).values())),
        torch.tensor(list(step_losses(islands_run).values())),
    )


def test_plan_shows_the_islands(tmp_path):
    cfg = dist_config(tmp_path, "diloco", procs=4, **{"distributed.diloco": ISLANDS})
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg), "--dry-run", timeout=60)
    assert rc == 0, stderr[-3000:]
    plan = of(events, "plan")[0]
    assert (plan["islands"], plan["island_size"], plan["inner_strategy"]) == (2, 2, "fsdp")


def test_islands_resume_exactly_after_sigkill(islands_run, tmp_path):
    """Each rank restores its own shard of the outer state (rank file): bitwise the uninterrupted run."""
    cfg = dist_config(tmp_path, "diloco", steps=STEPS, procs=4, **{"distributed.diloco": ISLANDS})
    config = write_config(tmp_path, cfg)
    killed = kill_after_checkpoint(config, at_step=4)
    assert not of(killed, "done")
    rc, resumed, stderr = run_trainer(config, timeout=300)
    assert rc == 0, stderr[-3000:]
    start = of(resumed, "start")[0]["resumed_from"]
    assert start in (4, 8)
    got, want = step_losses(resumed), step_losses(islands_run)
    assert sorted(got) == list(range(start + 1, STEPS + 1))
    assert [got[s] for s in sorted(got)] == [want[s] for s in sorted(got)]
    assert of(resumed, "done")[0]["eval_loss"] == of(islands_run, "done")[0]["eval_loss"]


@pytest.mark.parametrize("kind", ["int8", "fp8"])
def test_quantized_pseudo_gradients_keep_their_error_as_feedback(kind, one_thread):
    """Codes stay within half a step of int8 (fp8: its relative precision); fed back, the residual
    keeps the running sum of what was sent within one quantization error of the true sum."""
    from cotrain_core.strategies import quantize

    torch.manual_seed(0)
    x = torch.randn(3 * quantize.CHUNK + 17) * torch.logspace(-4, 1, 3 * quantize.CHUNK + 17)
    codes, scales = quantize.quantize(x, kind)
    assert codes.dtype == torch.uint8 and codes.numel() == x.numel() and scales.numel() == 4
    y = quantize.dequantize(codes, scales, kind, x.numel())
    bound = scales.repeat_interleave(quantize.CHUNK)[: x.numel()]
    if kind == "int8":
        assert ((x - y).abs() <= bound / 2 * 1.0001).all()
    else:
        assert ((x - y).abs() <= x.abs() / 16 + bound / 2**9).all()  # 3 mantissa bits; subnormals
    residual, sent = torch.zeros_like(x), torch.zeros_like(x)
    for _ in range(20):
        value = x + residual
        codes, scales = quantize.quantize(value, kind)
        got = quantize.dequantize(codes, scales, kind, x.numel())
        residual = value - got
        sent += got
    torch.testing.assert_close(sent + residual, 20 * x, rtol=1e-5, atol=1e-5)


STREAMING = {"fragments": 2, "overlap_steps": 1, "mixing": 0.5, "quantization": "int8"}


def test_streaming_identity_values_are_plain_diloco(strategy_runs, tmp_path):
    """One fragment, no overlap, mixing 1, no quantization: the streaming machinery (fragment
    schedule, asynchronous reduction, per-fragment outer SGD) is plain DiLoCo, bitwise."""
    identity = {"fragments": 1, "overlap_steps": 0, "mixing": 1.0, "quantization": "none"}
    cfg = dist_config(tmp_path, "diloco", steps=STEPS, **{"distributed.diloco": identity})
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg), timeout=300)
    assert rc == 0, stderr[-3000:]
    assert step_losses(events) == step_losses(strategy_runs["diloco"])
    assert of(events, "done")[0]["eval_loss"] == of(strategy_runs["diloco"], "done")[0]["eval_loss"]


@pytest.fixture(scope="module")
def streaming_run(tmp_path_factory):
    """2 ranks, 2 fragments, overlap 1 step, mixing 0.5, int8 pseudo-gradients, uninterrupted."""
    tmp = tmp_path_factory.mktemp("streaming")
    cfg = dist_config(tmp, "diloco", steps=STEPS, **{"distributed.diloco": STREAMING})
    rc, events, stderr = run_trainer(write_config(tmp, cfg), timeout=300)
    assert rc == 0, stderr[-3000:]
    return events


def test_streaming_syncs_fragments_on_staggered_schedules(streaming_run, validator):
    for event in streaming_run:
        validator.validate(event)
    params = of(streaming_run, "start")[0]["parameters"]
    syncs = of(streaming_run, "sync")
    # fragment 1 starts at steps 2 and 6, fragment 0 at 4 and 8, each applied a step later; the
    # last step applies every fragment
    assert [(s["fragment"], s["started_step"], s["step"]) for s in syncs] == [
        (1, 2, 3),
        (0, 4, 5),
        (1, 6, 7),
        (0, 8, 8),
        (1, 8, 8),
    ]
    one_round = syncs[0]["bytes"] + syncs[1]["bytes"]  # int8 codes + fp32 scales of every parameter
    assert params < one_round < params * 1.002
    losses = list(step_losses(streaming_run).values())
    assert losses[-1] < losses[0]


def test_streaming_resumes_exactly_with_a_reduction_in_flight(streaming_run, tmp_path):
    """The checkpoint of step 4 is taken while fragment 0's reduction is in flight: its result,
    the residuals and each rank's local weights are saved, so the resumed run is bitwise the same."""
    cfg = dist_config(tmp_path, "diloco", steps=STEPS, **{"distributed.diloco": STREAMING})
    config = write_config(tmp_path, cfg)
    killed = kill_after_checkpoint(config, at_step=4)
    assert not of(killed, "done")
    rc, resumed, stderr = run_trainer(config, timeout=300)
    assert rc == 0, stderr[-3000:]
    start = of(resumed, "start")[0]["resumed_from"]
    assert start in (4, 8)
    got, want = step_losses(resumed), step_losses(streaming_run)
    assert [got[s] for s in sorted(got)] == [want[s] for s in sorted(got)]
    assert of(resumed, "done")[0]["eval_loss"] == of(streaming_run, "done")[0]["eval_loss"]


def test_streaming_islands_with_ddp_inside_resume_exactly(tmp_path):
    """2 islands x 2 with ddp inside (each rank holds a chunk of the flat outer state, gathered in
    the island), streaming with fp8: a SIGKILL after the checkpoint of step 4 resumes bitwise."""
    keys = {**ISLANDS, **STREAMING, "inner_strategy": "ddp", "quantization": "fp8"}
    runs = {}
    for name in ("reference", "killed"):
        (tmp_path / name).mkdir()
        cfg = dist_config(tmp_path / name, "diloco", steps=STEPS, procs=4, **{"distributed.diloco": keys})
        runs[name] = write_config(tmp_path / name, cfg)
    rc, reference, stderr = run_trainer(runs["reference"], timeout=300)
    assert rc == 0, stderr[-3000:]
    assert not of(kill_after_checkpoint(runs["killed"], at_step=4), "done")
    rc, resumed, stderr = run_trainer(runs["killed"], timeout=300)
    assert rc == 0, stderr[-3000:]
    assert of(resumed, "start")[0]["resumed_from"] in (4, 8)
    got, want = step_losses(resumed), step_losses(reference)
    assert [got[s] for s in sorted(got)] == [want[s] for s in sorted(got)]
    assert of(resumed, "done")[0]["eval_loss"] == of(reference, "done")[0]["eval_loss"]
