"""Speed options that must not change what is computed: activation checkpointing, torch.compile,
the MFU formula, FSDP mixed precision and the deferred (no host sync) step metrics."""

import json
import os
import signal
import time

import pytest
import torch
from conftest import child_pids, dist_config, of, popen_trainer, rank_of, run_trainer, write_config

from cotrain_core import models, plan, speed
from cotrain_core.config import ConfigError, config_from_dict


def _cfg(tmp_path, **model):
    raw = {
        "run": {"session_id": "s", "final_path": str(tmp_path / "final")},
        "model": {"type": "llama2", "size": "debug", **model},
        "data": {"seq_length": 16},
        "checkpoint": {"output_path": str(tmp_path / "ckpt")},
    }
    return config_from_dict(raw)


def _train(cfg, steps=3):
    """(losses, final gradients, state-dict names) of a few AdamW steps on fixed random tokens."""
    torch.manual_seed(0)
    model = models.build_model(cfg, 260)
    model.train()
    speed.prepare_model(model, cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
    batch = torch.randint(0, 260, (4, 17), generator=torch.Generator().manual_seed(1))
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    grads = [p.grad.clone() for p in model.parameters()]
    return losses, grads, list(model.state_dict())


def test_activation_checkpointing_is_an_identity(tmp_path, one_thread):
    plain = _train(_cfg(tmp_path))
    ckpt = _train(_cfg(tmp_path, activation_checkpointing=True))
    assert ckpt[0] == plain[0]  # bitwise: the recomputed forward is the same computation
    assert all(torch.equal(a, b) for a, b in zip(ckpt[1], plain[1], strict=True))
    assert ckpt[2] == plain[2]  # checkpoints and exports keep their names


@pytest.mark.skipif(speed.c_compiler() is None, reason="inductor needs a C compiler")
def test_compiled_layers_train_like_eager(tmp_path, one_thread):
    # the smallest model, 2 steps: inductor compiling on shared CPU cores takes about a minute
    eager = _train(_cfg(tmp_path), steps=2)
    compiled = _train(_cfg(tmp_path, compile=True, activation_checkpointing=True), steps=2)
    torch.testing.assert_close(compiled[0], eager[0], rtol=1e-4, atol=1e-5)  # fused kernels round differently
    assert compiled[2] == eager[2]


def test_compile_without_a_c_compiler_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(ConfigError, match=r"^model\.compile: .*C compiler"):
        speed.prepare_model(models.build_model(_cfg(tmp_path), 260), _cfg(tmp_path, compile=True).model)


def test_flops_per_token_counts_matmuls_and_attention(tmp_path):
    cfg = _cfg(tmp_path)
    llama = models.plan(cfg, 260)  # 468,608 parameters, 260 x 128 of them the input embedding
    assert llama["parameters"] == 468_608
    # 6 x (468,608 - 33,280) + 12 x 2 layers x 128 hidden x 16 tokens
    assert plan.flops_per_token(llama, 16) == 6 * 435_328 + 49_152 == 2_661_120
    # llama2 7B with Llama's 32k vocabulary: 6.61 B multiplying parameters, attention 7.5% at 2048
    big = models.plan(config_from_dict({**_raw(tmp_path), "model": {"type": "llama2", "size": "7B"}}), 32000)
    flops = plan.flops_per_token(big, 2048)
    assert flops == 6 * (big["parameters"] - 32000 * 4096) + 12 * 32 * 4096 * 2048
    assert 0.07 < 12 * 32 * 4096 * 2048 / flops < 0.08


def _raw(tmp_path):
    return {
        "run": {"session_id": "s", "final_path": str(tmp_path / "final")},
        "checkpoint": {"output_path": str(tmp_path / "ckpt")},
    }


def test_fsdp_bf16_mixed_precision_trains(tmp_path, validator):
    """Two gloo ranks, FSDP2 with param_dtype bf16 and fp32 gradient reduction."""
    cfg = dist_config(tmp_path, "fsdp", steps=8, model={"precision": "bf16"})
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg), timeout=300)
    assert rc == 0, stderr[-3000:]
    losses = [e["loss"] for e in of(events, "step")]
    assert [e["step"] for e in of(events, "step")] == list(range(1, 9))
    assert losses[-1] < losses[0] - 0.5
    # deferred step events still come before the eval and checkpoint of their step, and only then
    # the next step's: step 4, eval 4, checkpoint 4, step 5, ..., step 8, eval 8, checkpoint 8, done
    order = [
        (e["event"], e.get("step")) for e in events if e["event"] in ("step", "eval", "checkpoint", "done")
    ]
    want = [("step", s) for s in range(1, 5)] + [("eval", 4), ("checkpoint", 4)]
    want += [("step", s) for s in range(5, 9)] + [("eval", 8), ("checkpoint", 8), ("done", 8)]
    assert order == want
    for event in events:
        validator.validate(event)


def test_sigterm_to_one_rank_stops_all_at_the_same_step(tmp_path, validator):
    """The stop flag is all-reduced without waiting and read one step later: every rank still stops
    after the same step, with one checkpoint, and the step events stay complete and in order."""
    cfg = dist_config(tmp_path, "ddp", steps=10_000, checkpoint={"interval": 0})
    proc = popen_trainer(write_config(tmp_path, cfg))
    events, started = [], time.monotonic()
    try:
        for line in proc.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == "step" and events[-1]["step"] == 3:
                (rank1,) = [p for p in child_pids(proc.pid) if rank_of(p) == 1]
                os.kill(rank1, signal.SIGTERM)  # the launcher and rank 0 are not told
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert rc == 4 and time.monotonic() - started < 300
    steps = [e["step"] for e in of(events, "step")]
    assert steps == list(range(1, len(steps) + 1)) and 3 < len(steps) < 20
    assert [e["step"] for e in of(events, "checkpoint")] == [steps[-1]]
    assert events[-1]["event"] == "log" and "stopped after step" in events[-1]["message"]
    for event in events:
        validator.validate(event)
