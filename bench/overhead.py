"""Orchestration overhead: the same tiny training run bare and through the API, interleaved.

    ./cotrain up --detach
    .venv/bin/python bench/overhead.py [--pairs 3]

Each pair runs examples/tiny-llama.json (200 steps) once through the REST API, followed by a
WebSocket client until COMPLETED, and once as a bare `python -m cotrain_core.train --config` of the
very TOML the API generated for it (its own session id and output paths, the same data), in
alternating order. For each run: tokens/s (the trainer's own figure, median over its steps), the
time to the first step (API: from sending the create request to the first `training.progress` at
the client; bare: from the launch to the first `step` event on stdout), the time to the last step,
and the time to the end (API: COMPLETED at the client, which includes the automatic evaluation of
the model; bare: the process's exit), and the CPU seconds each part of the stack used meanwhile.
Prints every pair and the medians of the ratio and the
differences, and writes them to bench/results/overhead.json.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from client import ROOT, call, next_message, subscribe, write_results
from relay import cpu_by_part

REQUEST = json.loads((ROOT / "examples/tiny-llama.json").read_text())
FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def cpu_used(before: dict[str, float]) -> dict[str, float]:
    """CPU seconds each part of the stack used since ``before`` (the trainer's under "trainers")."""
    return {k: round(v - before[k], 2) for k, v in cpu_by_part().items()}


def through_api(api: str) -> dict:
    cpu = cpu_by_part()
    sent = time.monotonic()
    session = call(api, "/api/sessions", REQUEST, "POST")
    inbox, stop = subscribe(api, session["id"])
    first = last = end = None
    try:
        deadline = sent + 600
        while end is None:
            at, m = next_message(inbox, deadline)
            if m["type"] == "training.progress":
                first = first or at
                if m["step"] == m.get("totalSteps", REQUEST["trainingConfig"]["maxSteps"]):
                    last = last or at
            elif m["type"] == "session.status" and m["status"] in FINAL:
                if m["status"] != "COMPLETED":
                    raise RuntimeError(f"session {session['id']} ended {m['status']}")
                end = at
    finally:
        stop.set()
    rows = call(api, f"/api/sessions/{session['id']}/metrics?limit=10000")["metrics"]
    return {
        "session": session["id"],
        "tokens_per_s": statistics.median(r["tokensPerSecond"] for r in rows),
        "first_step_s": first - sent,
        "last_step_s": (last or end) - sent,
        "end_s": end - sent,
        "cpu_s": cpu_used(cpu),
    }


def bare(config: Path, storage: Path, tag: str) -> dict:
    """The session's generated TOML with its own session id and output paths, run directly."""
    sid = re.search(r'^session_id = "([^"]+)"', config.read_text(), re.M).group(1)
    out = Path(tempfile.mkdtemp(prefix="cotrain-bare."))
    text = config.read_text().replace(f'"{sid}"', f'"bare-{tag}"')
    text = text.replace(str(storage / "models/final" / sid), str(out / "final"))
    text = text.replace(str(storage / "models/checkpoints" / sid), str(out / "checkpoints"))
    toml = out / "bare.toml"
    toml.write_text(text)
    cpu = cpu_by_part()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cotrain_core.train", "--config", str(toml)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    first = last = None
    speeds = []
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "step":
            first = first or time.monotonic()
            speeds.append(event["tokens_per_s"])
            if event["step"] == event["total_steps"]:
                last = time.monotonic()
    if proc.wait() != 0:
        raise RuntimeError(f"the bare trainer exited {proc.returncode}")
    end = time.monotonic()
    subprocess.run(["rm", "-rf", str(out)], check=True)
    return {
        "tokens_per_s": statistics.median(speeds),
        "first_step_s": first - started,
        "last_step_s": last - started,
        "end_s": end - started,
        "cpu_s": cpu_used(cpu),  # the idle stack's; the bare trainer is not one of its parts
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--api", default=f"http://127.0.0.1:{os.environ.get('COTRAIN_API_PORT', '8080')}")
    args = parser.parse_args()
    storage = Path(os.environ.get("COTRAIN_STORAGE_ROOT", ROOT / "var/cotrain")).resolve()

    # A first session through the API prepares the data set both then read from its cache.
    config = storage / "configs/generated" / (through_api(args.api)["session"] + ".toml")
    pairs = []
    for n in range(1, args.pairs + 1):
        if n % 2:
            api, raw = through_api(args.api), bare(config, storage, str(n))
        else:
            raw = bare(config, storage, str(n))
            api = through_api(args.api)
        pair = {
            "api": api,
            "bare": raw,
            "tokens_per_s_ratio": api["tokens_per_s"] / raw["tokens_per_s"],
            "extra_first_step_s": api["first_step_s"] - raw["first_step_s"],
            "extra_last_step_s": api["last_step_s"] - raw["last_step_s"],
            "extra_end_s": api["end_s"] - raw["end_s"],
        }
        pairs.append(pair)
        print(
            f"pair {n}: tokens/s {api['tokens_per_s']:.0f} through the API, {raw['tokens_per_s']:.0f}"
            f" bare (x{pair['tokens_per_s_ratio']:.3f}); first step +{pair['extra_first_step_s']:.2f} s,"
            f" last step +{pair['extra_last_step_s']:.2f} s, end +{pair['extra_end_s']:.2f} s",
            flush=True,
        )
    medians = {
        key: round(statistics.median(p[key] for p in pairs), 3)
        for key in ("tokens_per_s_ratio", "extra_first_step_s", "extra_last_step_s", "extra_end_s")
    }
    write_results("overhead", args.pairs, medians, pairs, command=f"bench/overhead.py --pairs {args.pairs}")
    print(
        f"median: tokens/s x{medians['tokens_per_s_ratio']} of bare; first step "
        f"+{medians['extra_first_step_s']} s, last step +{medians['extra_last_step_s']} s, end "
        f"+{medians['extra_end_s']} s (COMPLETED includes the model's evaluation)"
    )


if __name__ == "__main__":
    main()
