"""Bytes on the wire per inner step and final eval loss: ddp, DiLoCo, DiLoCo+int8, streaming DiLoCo.

    python cotrain-core/bench/comm.py [--workers 2] [--inner-steps 8] [--steps 48]

Every variant trains llama2/debug for the same steps on the same data (equal tokens), with
`--workers` CPU ranks (gloo), each DiLoCo rank its own replica (island_size 1). Bytes are what
this rank handed to the collectives, summed by the trainer as it sends them: DDP's gradient
buckets through a communication hook, DiLoCo's pseudo-gradient buffers (numel x element size of
the all-reduced tensor; int8: the one-byte codes plus the fp32 per-chunk scales all-gathered), read
from the cumulative `allreduce_bytes` of the last step event, divided by the steps. Control scalars
(loss / stop flag, 32 bytes per step under ddp, 8 per outer step under diloco) are not counted.
"""

import argparse

from common import config, machine, run, tmpdir

VARIANTS = {
    "ddp": None,
    "diloco": {},
    "diloco+int8": {"quantization": "int8"},
    "streaming": {"fragments": 4, "overlap_steps": 1},
    "streaming+int8": {"fragments": 4, "overlap_steps": 1, "quantization": "int8"},
}


def measure(variant: str, workers: int, inner: int, steps: int) -> tuple[float, float, int]:
    """(bytes per step per rank, final eval loss, parameters) of one run."""
    tmp = tmpdir()
    extra, diloco = {}, VARIANTS[variant]
    if diloco is not None:
        extra["distributed.diloco"] = {"inner_steps": inner, "island_size": 1, **diloco}
    cfg = config(
        tmp,
        train={"max_steps": steps, "batch_size": 8},
        data={"seq_length": 32},
        distributed={"nodes": 1, "gpus_per_node": workers, "strategy": "ddp" if diloco is None else "diloco"},
        **extra,
    )
    rc, events = run(cfg)
    assert rc == 0, f"{variant} x{workers} exited {rc}"
    events = [e for _, e in events]
    params = [e for e in events if e["event"] == "start"][0]["parameters"]
    sent = [e for e in events if e["event"] == "step"][-1]["allreduce_bytes"]
    return sent / steps, [e for e in events if e["event"] == "done"][0]["eval_loss"], params


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--inner-steps", type=int, default=8)
    p.add_argument("--steps", type=int, default=48)
    a = p.parse_args()
    print(f"machine: {machine()}")
    print(f"llama2/debug, {a.workers} workers, inner_steps {a.inner_steps}, {a.steps} steps, batch 8 x 32")
    ddp = None
    for variant in VARIANTS:
        per_step, loss, params = measure(variant, a.workers, a.inner_steps, a.steps)
        ddp = ddp or per_step
        print(
            f"{variant:15s} {per_step:12,.0f} B/step ({per_step / params:.4f} B/param)  "
            f"x ddp {per_step / ddp:.4f}  (1/(4H) = {1 / (4 * a.inner_steps):.4f})  eval loss {loss:.4f}"
        )


if __name__ == "__main__":
    main()
