"""Bytes all-reduced per inner step: diloco over ddp, with 2 and 4 workers.

    python cotrain-core/bench/comm.py [--inner-steps 4] [--dtype fp32]

Counts the actual payloads: DDP's gradient buckets through a communication hook, DiLoCo's flat
pseudo-gradient buffer (numel x element size of the all-reduced tensor); both are the
`allreduce_bytes` counter on the trainer's step events (per rank, cumulative) for ddp and the
`bytes` of the `sync` events for diloco. Control scalars
(loss / stop flag, 32 bytes per step under ddp, 8 per outer step under diloco) are not counted.
"""

import argparse

from common import config, machine, run, tmpdir


def measure(strategy: str, workers: int, inner: int, dtype: str) -> tuple[float, int]:
    tmp = tmpdir()
    steps = 2 * inner
    extra = {}
    if strategy == "diloco":
        extra["distributed.diloco"] = {"inner_steps": inner, "pseudo_grad_dtype": dtype}
    cfg = config(
        tmp,
        train={"max_steps": steps, "batch_size": 8},
        data={"seq_length": 32},
        distributed={"nodes": 1, "gpus_per_node": workers, "strategy": strategy},
        **extra,
    )
    rc, events = run(cfg)
    assert rc == 0, f"{strategy} x{workers} exited {rc}"
    params = [e for _, e in events if e["event"] == "start"][0]["parameters"]
    if strategy == "diloco":  # the last outer step runs after the last step event: count sync events
        return sum(e["bytes"] for _, e in events if e["event"] == "sync") / steps, params
    return [e for _, e in events if e["event"] == "step"][-1]["allreduce_bytes"] / steps, params


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--inner-steps", type=int, default=4)
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"))
    a = p.parse_args()
    print(f"machine: {machine()}")
    print(
        f"llama2/debug, inner_steps {a.inner_steps}, pseudo_grad_dtype {a.dtype}, {2 * a.inner_steps} steps"
    )
    expected = (2 if a.dtype != "fp32" else 4) / 4 / a.inner_steps  # dtype bytes / fp32 grad bytes / H
    for workers in (2, 4):
        ddp, params = measure("ddp", workers, a.inner_steps, a.dtype)
        dil, _ = measure("diloco", workers, a.inner_steps, a.dtype)
        print(
            f"{workers} workers: ddp {ddp:,.0f} B/step (= {ddp / params:.2f} B/param), diloco {dil:,.0f} "
            f"B/step; diloco/ddp = {dil / ddp:.4f} (expected {expected:.4f})"
        )


if __name__ == "__main__":
    main()
