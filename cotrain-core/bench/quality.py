"""Quality at equal tokens: diloco (4 workers, inner_steps 50) vs ddp on the tiny built-in task.

    python cotrain-core/bench/quality.py [--steps 200] [--workers 4] [--inner-steps 50] [--size debug]

Both runs: the same global batch (8 sequences of 64 tokens per step over all workers), the same
steps, so the same tokens; AdamW inner lr 3e-3 with the default warmup/cosine schedule; DiLoCo outer
SGD lr 0.7, momentum 0.9, Nesterov. Reports the final eval loss of each and the relative gap.
"""

import argparse

from common import config, machine, run, tmpdir


def final_eval(strategy: str, a) -> float:
    tmp = tmpdir()
    extra = {"distributed.diloco": {"inner_steps": a.inner_steps}} if strategy == "diloco" else {}
    cfg = config(
        tmp,
        model={"size": a.size},
        train={"max_steps": a.steps, "batch_size": 8, "epochs": 100},
        data={"seq_length": 64},
        distributed={"nodes": 1, "gpus_per_node": a.workers, "strategy": strategy},
        **extra,
    )
    rc, events = run(cfg)
    assert rc == 0, f"{strategy} exited {rc}"
    return [e for _, e in events if e["event"] == "done"][0]["eval_loss"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--inner-steps", type=int, default=50)
    p.add_argument("--size", default="debug")
    a = p.parse_args()
    ddp, dil = final_eval("ddp", a), final_eval("diloco", a)
    print(f"machine: {machine()}")
    print(
        f"llama2/{a.size}, {a.workers} workers, {a.steps} steps x 8 x 64 tokens, inner_steps {a.inner_steps}"
    )
    print(f"ddp    final eval loss {ddp:.4f}")
    print(f"diloco final eval loss {dil:.4f}")
    verdict = "within" if abs(dil - ddp) <= 0.03 * ddp else "outside"
    print(f"diloco vs ddp: {100 * (dil - ddp) / ddp:+.2f} % ({verdict} 3 %)")


if __name__ == "__main__":
    main()
