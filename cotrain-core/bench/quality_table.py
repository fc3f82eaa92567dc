"""The quality bench's JSON lines (quality.py --json FILE) as a markdown table, in file order.

    python cotrain-core/bench/quality_table.py cotrain-core/bench/results/quality-sweep.jsonl \
        cotrain-core/bench/results/quality.json

One row per strategy of each record: its DiLoCo overrides, seeds, mean final eval loss, spread
and the gap of the mean to DDP's mean over the same seeds and steps (where the files hold a DDP
run of each of those seeds).
"""

import json
import statistics
import sys


def main():
    records = [json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]
    ddp = {}  # (steps, seed) -> DDP's final eval loss
    for r in records:
        if "ddp" in r["results"]:
            for seed, loss in zip(r["seeds"], r["results"]["ddp"]["losses"], strict=True):
                ddp.setdefault((r["steps"], seed), loss)
    print("| strategy | steps | DiLoCo settings | seeds | mean eval loss | min..max | std | vs DDP |")
    print("|---|---|---|---|---|---|---|---|")
    for r in records:
        for s, st in r["results"].items():
            names = [
                o.partition("=")[0].rpartition(".")[2] + "=" + o.partition("=")[2] for o in r["overrides"]
            ]
            settings = (" ".join(names) or "(defaults)") if s == "diloco" else ""
            gap = ""
            if s == "diloco" and all((r["steps"], seed) in ddp for seed in r["seeds"]):
                base = statistics.fmean(ddp[(r["steps"], seed)] for seed in r["seeds"])
                gap = f"{100 * (st['mean'] - base) / base:+.1f} %"
            print(
                f"| {s} | {r['steps']} | {settings} | {','.join(map(str, r['seeds']))} | {st['mean']:.4f} | "
                f"{st['min']:.4f}..{st['max']:.4f} | {st['std']:.4f} | {gap} |"
            )


if __name__ == "__main__":
    main()
