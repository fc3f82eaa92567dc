"""One prepared, time-bounded GPU check of the trainer (for a lent single-GPU machine, unattended).

    PYTHONPATH=cotrain-core/src python3 cotrain-core/bench/gpu.py --out OUT [--budget-s 480] [--dry]
        [--runs ddp-125M,fsdp-125M,diloco-125M,1B-eager,1B-compiled]

Everything goes through the real trainer (`python -m cotrain_core.train`, this interpreter, this
PYTHONPATH plus cotrain-core/src), one process per run:
  a. ddp, fsdp and diloco, llama2/125M bf16, a few steps each: exit 0, every step event, `done`.
     World size 1 (one GPU): no process group is created, so no nccl collective runs here.
  b. llama2/1B (TinyLlama dims) bf16, seq 2048: median tokens/s and `mfu` of the step events, eager
     and with model.compile = true, in the same run of this script.
Runs share one tokenized data cache. A run gets at most what is left of --budget-s (a's at most
120 s each, b's eager run half of it); a run past its share is killed and reported, and the
script stops by itself. tokens/s is the median of the step events' (CUDA-event step time), wall
tok/s the same from the events' arrival times (host overheads included). Writes OUT/gpu-bench.json
(OUT a directory, else the file itself) and each run's stderr, and prints a table with the date
and the GPU. Without CUDA it exits 2 at once; --dry instead builds
every config and runs the trainer's --dry-run on each (works on CPU: catches config typos).
Exit status: 0 when every run passed, 1 otherwise.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
WARMUP = {False: 3, True: 6}  # step events left out of the medians (compile: first steps compile)


def configs(work: Path) -> list[tuple[str, dict]]:
    """(name, TOML tables) of every run, in the order they run."""

    def cfg(name, model, train, data, strategy="ddp", diloco=None):
        tables = {
            "run": {
                "session_id": f"gpu-bench-{name}",
                "final_path": str(work / name / "final"),
                "storage_root": str(work / "storage"),  # one tokenized data cache for all runs
            },
            "model": {"type": "llama2", "precision": "bf16", **model},
            "train": {"learning_rate": 3e-4, "epochs": 1000, **train},
            "distributed": {"nodes": 1, "gpus_per_node": 1, "strategy": strategy},
            "data": {"data_path": "", **data},
            "checkpoint": {"interval": 0, "output_path": str(work / name / "ckpt")},
        }
        if diloco:
            tables["distributed.diloco"] = diloco
        return name, tables

    small = dict(model={"size": "125M"}, train={"max_steps": 8, "batch_size": 8}, data={"seq_length": 512})
    big = dict(train={"max_steps": 30, "batch_size": 16, "micro_batch_size": 8}, data={"seq_length": 2048})
    return [
        cfg("ddp-125M", **small),
        cfg("fsdp-125M", **small, strategy="fsdp"),
        cfg("diloco-125M", **small, strategy="diloco", diloco={"inner_steps": 4}),
        cfg("1B-eager", model={"size": "1B"}, **big),
        cfg("1B-compiled", model={"size": "1B", "compile": True}, **big),
    ]


def to_toml(tables: dict) -> str:
    lines = []
    for section, table in tables.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
        lines.append("")
    return "\n".join(lines)


def trainer(config: Path, *extra: str, timeout: float, log: Path) -> tuple[int | None, list[dict]]:
    """Run the trainer; (exit code, or None if killed at the timeout; its events, each with its
    arrival time in "_t"). stderr goes to log."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "cotrain_core.train", "--config", str(config), *extra]
    events = []
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        killer = threading.Timer(max(timeout, 1), proc.kill)
        killer.start()
        for line in proc.stdout:
            if line.startswith("{"):
                events.append({**json.loads(line), "_t": time.perf_counter()})
        rc = proc.wait()
        fired = not killer.is_alive()
        killer.cancel()
    return (None if fired and rc == -signal.SIGKILL else rc), events


def judge(name: str, tables: dict, rc, events: list[dict], seconds: float) -> dict:
    steps = [e for e in events if e["event"] == "step"]
    want = tables["train"]["max_steps"]
    errors = [e["message"] for e in events if e["event"] == "error"]
    problems = []
    if rc != 0:
        problems.append("killed at its time share" if rc is None else f"exit {rc}")
    got = [e["step"] for e in steps]
    if got != list(range(1, want + 1)):
        problems.append(f"{len(got)} step events ({got[:1]}..{got[-1:]}), want steps 1..{want} in order")
    if rc == 0 and not any(e["event"] == "done" for e in events):
        problems.append("no done event")
    if tables["distributed"]["strategy"] == "diloco" and not any(e["event"] == "sync" for e in events):
        problems.append("no sync event")
    timed = steps[WARMUP[tables["model"].get("compile", False)] :] or steps
    result = dict(name=name, ok=not problems, problems=problems + errors, seconds=round(seconds, 1))
    result["steps"] = len(steps)
    if timed:
        result["tokens_per_s"] = statistics.median(e["tokens_per_s"] for e in timed)
        span = timed[:-1]  # the last step's event is not deferred: left out of the wall-clock span
        if len(span) > 2:  # end to end: event arrivals, host overheads included
            tokens = tables["train"]["batch_size"] * tables["data"]["seq_length"]
            result["wall_tokens_per_s"] = round(
                (len(span) - 1) * tokens / (span[-1]["_t"] - span[0]["_t"]), 1
            )
        mfus = [e["mfu"] for e in timed if "mfu" in e]
        result["mfu"] = statistics.median(mfus) if mfus else None
        result["final_loss"] = steps[-1]["loss"]
    start = next((e for e in events if e["event"] == "start"), None)
    if start:
        result["parameters"] = start["parameters"]
    return result


def machine() -> dict:
    import platform

    import torch

    cuda = torch.cuda.is_available()
    return dict(
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        gpu=torch.cuda.get_device_name(0) if cuda else None,
        torch=torch.__version__,
        cuda=torch.version.cuda,
        python=platform.python_version(),
        cores=len(os.sched_getaffinity(0)),
    )


def table(info: dict, results: list[dict]) -> str:
    lines = [
        f"gpu.py {info['date']} on {info['gpu'] or 'no GPU'}, torch {info['torch']} (CUDA {info['cuda']})",
        f"{'run':14} {'ok':4} {'steps':>5} {'tokens/s':>12} {'wall tok/s':>12} {'MFU':>7} {'loss':>7} "
        f"{'s':>6}  problems",
    ]
    for r in results:
        tps = f"{r['tokens_per_s']:,.0f}" if r.get("tokens_per_s") else "-"
        wall = f"{r['wall_tokens_per_s']:,.0f}" if r.get("wall_tokens_per_s") else "-"
        mfu = f"{r['mfu']:.1%}" if r.get("mfu") is not None else "-"
        loss = f"{r['final_loss']:.3f}" if r.get("final_loss") is not None else "-"
        lines.append(
            f"{r['name']:14} {'yes' if r['ok'] else 'NO':4} {r.get('steps', 0):>5} {tps:>12} {wall:>12} "
            f"{mfu:>7} {loss:>7} {r['seconds']:>6}  {'; '.join(r['problems'])[:200]}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="directory (or .json file) for the results")
    p.add_argument("--budget-s", type=float, default=480, help="overall wall-clock budget in seconds")
    p.add_argument("--dry", action="store_true", help="CPU: build the configs and --dry-run each")
    p.add_argument(
        "--runs", help="comma-separated run names to run (default: all), e.g. 1B-eager,1B-compiled"
    )
    a = p.parse_args(argv)
    deadline = time.monotonic() + a.budget_s
    out = Path(a.out)
    out_dir = out if out.is_dir() or not out.suffix else out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    result_file = out / "gpu-bench.json" if out_dir == out else out
    if not a.dry:
        import torch

        if not torch.cuda.is_available():
            print(
                "gpu.py: no CUDA GPU visible (torch.cuda.is_available() is False); nothing run",
                file=sys.stderr,
            )
            return 2
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="cotrain-gpu-bench-"))
    results = []
    chosen = configs(work)
    if a.runs:
        wanted = a.runs.split(",")
        unknown = set(wanted) - {name for name, _ in chosen}
        if unknown:
            print(
                f"gpu.py: unknown --runs {sorted(unknown)}; known: {[n for n, _ in chosen]}", file=sys.stderr
            )
            return 2
        chosen = [(name, tables) for name, tables in chosen if name in wanted]
    for name, tables in chosen:
        (work / name).mkdir(parents=True, exist_ok=True)
        config = work / name / "run.toml"
        config.write_text(to_toml(tables))
        left = deadline - time.monotonic()
        if left < 20:
            results.append(dict(name=name, ok=False, problems=["not run: budget spent"], seconds=0))
            continue
        # a strategy check gets at most 120 s; the eager 1B run leaves the compiled one half
        share = left / 2 if name == "1B-eager" else left if name == "1B-compiled" else min(left, 120)
        started = time.monotonic()
        log = out_dir / f"{name}.stderr.txt"
        if a.dry:
            rc, events = trainer(config, "--dry-run", timeout=share, log=log)
            plan = [e for e in events if e["event"] == "plan"]
            ok = rc == 0 and len(plan) == 1
            problems = (
                [] if ok else [f"dry-run exit {rc}", *(e["message"] for e in events if e["event"] == "error")]
            )
            r = dict(name=name, ok=ok, problems=problems, seconds=round(time.monotonic() - started, 1))
            if plan:
                r["parameters"] = plan[0]["parameters"]
                r["tokens_per_step"] = plan[0]["tokens_per_step"]
        else:
            rc, events = trainer(config, timeout=share, log=log)
            r = judge(name, tables, rc, events, time.monotonic() - started)
        results.append(r)
        print(table(info, results[-1:]).splitlines()[-1], flush=True)
    report = dict(info, dry=a.dry, budget_s=a.budget_s, results=results)
    result_file.write_text(json.dumps(report, indent=2) + "\n")
    print(table(info, results))
    print(f"results: {result_file}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
