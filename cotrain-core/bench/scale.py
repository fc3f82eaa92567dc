"""FSDP model building and sharded checkpoints, 2 gloo ranks on CPU.

    python cotrain-core/bench/scale.py [--size 125M]

build:      peak RSS growth per rank and seconds for the old way (every rank builds the full model,
            then fully_shard) and strategies.build_model (meta device, rank 0's CPU init broadcast
            into the shards).
checkpoint: seconds the training thread is blocked by one save (async DCP: until the copy to CPU is
            taken) against the whole save (written, hashed, committed), and the old way (full model
            and optimizer gathered on rank 0, saved by rank 0, hashed serially).
"""

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

from cotrain_core import checkpoint, checkpointing, models
from cotrain_core.config import config_from_dict
from cotrain_core.distributed import Dist
from cotrain_core.launch import free_port
from cotrain_core.strategies import DistContext, build_model, make
from cotrain_core.strategies.fsdp import FSDPStrategy
from cotrain_core.tokenizer import VOCAB_SIZE


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cfg(size: str, out: str):
    raw = {
        "run": {"session_id": "bench", "final_path": f"{out}/final"},
        "model": {"type": "llama2", "size": size},
        "distributed": {"gpus_per_node": 2, "strategy": "fsdp"},
        "checkpoint": {"output_path": f"{out}/ckpt", "keep_last": 1, "keep_best": False},
    }
    return config_from_dict(raw)


def _rank(rank, port, size, way, out, result):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    ctx = DistContext(rank, 2, rank, torch.device("cpu"))
    cfg = _cfg(size, out)
    base, start = _rss(), time.perf_counter()
    torch.manual_seed(0)
    if way == "full":
        model = FSDPStrategy(models.build_model(cfg, VOCAB_SIZE), ctx).module
    else:
        model = build_model(cfg, VOCAB_SIZE, ctx)
    dist.barrier()
    row = {"build_s": time.perf_counter() - start, "build_rss": _rss() - base}
    if way == "meta":
        row.update(_checkpoint(cfg, ctx, model))
    result[(way, rank)] = row
    dist.destroy_process_group()


def _checkpoint(cfg, ctx, model) -> dict:
    strategy = make("fsdp", model, ctx)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model(torch.zeros(1, 8, dtype=torch.long)).logits.sum().backward()
    optimizer.step()
    trainer = SimpleNamespace(
        cfg=cfg,
        ctx=ctx,
        device=ctx.device,
        strategy=strategy,
        optimizer=optimizer,
        steps_per_epoch=1,
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        dist=Dist(ctx),
        out=SimpleNamespace(emit=lambda *a, **k: None, log=lambda *a, **k: None),
    )
    ckpt = checkpointing.Checkpointer(trainer)
    start = time.perf_counter()
    ckpt.save(1, None)
    blocked = time.perf_counter() - start
    ckpt.wait()
    total = time.perf_counter() - start
    # the old way: full state gathered on rank 0, written and hashed there
    start = time.perf_counter()
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    full = strategy.model_state_dict()
    opt = get_optimizer_state_dict(model, optimizer, options=options)
    if ctx.rank == 0:
        tmp = Path(cfg.checkpoint.output_path) / "old"
        tmp.mkdir()
        torch.save({"model": full, "optimizer": opt}, tmp / "state.pt")
        checkpoint._sha256(tmp / "state.pt")
    dist.barrier()
    return {"save_blocked_s": blocked, "save_total_s": total, "old_save_s": time.perf_counter() - start}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", default="125M")
    args = p.parse_args()
    out = tempfile.mkdtemp(prefix="cotrain-scale-")
    print(f"llama2 {args.size}, 2 gloo ranks on CPU, torch {torch.__version__}")
    try:
        with mp.Manager() as manager:
            result = manager.dict()
            for way in ("full", "meta"):
                mp.spawn(_rank, args=(free_port(), args.size, way, out, result), nprocs=2)
            result = dict(result)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    for (way, rank), row in sorted(result.items()):
        cells = ", ".join(
            f"{k} {v / 2**20:.0f} MiB" if k.endswith("rss") else f"{k} {v:.2f}" for k, v in row.items()
        )
        print(f"{way:4} rank {rank}: {cells}")


if __name__ == "__main__":
    main()
