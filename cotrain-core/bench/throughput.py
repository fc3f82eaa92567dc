"""Tokens/s of cotrain-core's training loop vs a minimal hand-written PyTorch loop.

    python cotrain-core/bench/throughput.py [--steps 80] [--seq 128] [--batch 8] [--size debug]

Same model (models.build_model, same seed), same windows (data.prepare + epoch order), same batch,
AdamW + grad clip 1.0, fp32, one process. Both sides time forward+backward+optimizer step of each
step (median over steps after 10 warmup steps); the trainer's number is its `step.tokens_per_s`.
Also reports the end-to-end ratio from the arrival times of the trainer's step events (includes
event emission and data indexing) vs the hand loop's wall time.
"""

import argparse
import statistics
import time

from common import config, machine, run, tmpdir


def hand_loop(cfg_path, steps: int):
    import torch

    from cotrain_core import data, models
    from cotrain_core.config import load_config

    cfg = load_config(cfg_path)
    torch.set_num_threads(min(8, len(__import__("os").sched_getaffinity(0))))
    prepared = data.prepare(cfg)
    torch.manual_seed(cfg.train.seed)
    model = models.build_model(cfg, prepared.vocab_size)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.learning_rate, weight_decay=0.01)
    order = data.epoch_order(len(prepared.train), 0, cfg.train.seed)
    B, L = cfg.train.batch_size, cfg.data.seq_length
    times = []
    wall = time.perf_counter()
    for step in range(steps):
        batch = prepared.train[order[step * B : (step + 1) * B]]
        t = time.perf_counter()
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - t)
    wall = time.perf_counter() - wall
    return [B * L / t for t in times], steps * B * L / wall


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=80)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", default="debug")
    a = p.parse_args()
    tmp = tmpdir()
    cfg = config(
        tmp,
        model={"size": a.size},
        train={"max_steps": a.steps, "batch_size": a.batch, "epochs": 100},
        data={"seq_length": a.seq},
    )
    rc, events = run(cfg)
    assert rc == 0, f"trainer exited {rc}"
    steps = [(t, e) for t, e in events if e["event"] == "step"]
    core = statistics.median(e["tokens_per_s"] for _, e in steps[10:])
    core_wall = (len(steps) - 10) * a.batch * a.seq / (steps[-1][0] - steps[9][0])
    hand, hand_wall_total = hand_loop(cfg, a.steps)
    hand_med = statistics.median(hand[10:])
    print(f"machine: {machine()}")
    print(f"model llama2/{a.size}, seq {a.seq}, batch {a.batch}, {a.steps} steps, fp32, AdamW")
    print(f"cotrain-core step tokens/s (median): {core:,.0f}")
    print(f"hand loop    step tokens/s (median): {hand_med:,.0f}")
    print(f"ratio (step time)                  : {core / hand_med:.3f}")
    print(f"cotrain-core end-to-end tokens/s   : {core_wall:,.0f} (event arrival, steps 11..{a.steps})")
    print(f"hand loop    end-to-end tokens/s   : {hand_wall_total:,.0f}")
    print(f"ratio (end-to-end)                 : {core_wall / hand_wall_total:.3f}")


if __name__ == "__main__":
    main()
