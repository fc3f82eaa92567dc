"""Start latency: from the REST create to the first `training.progress` at a WebSocket client.

    ./cotrain up --detach
    .venv/bin/python bench/start_latency.py [--sessions 50]

One session at a time (the debug-size Llama 2, the tiny example's settings) on an idle stack: the
clock starts when the create request is sent and stops when the session's first step reaches a
WebSocket client opened right after the create answered; the session is then cancelled, and the
next one starts once it is CANCELLED. Also splits each start at the session's own events: until the
trainer was launched (placement, config, workflow start) and until it started training (the
trainer's Python, torch and the model). Prints p50 and p99 and writes
bench/results/start_latency.json.
"""

import argparse
import json
import os
import statistics
import time
from datetime import datetime

from client import ROOT, call, next_message, subscribe, write_results

REQUEST = json.loads((ROOT / "examples/tiny-llama.json").read_text())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def one(api: str) -> dict:
    sent = time.monotonic()
    wall = datetime.now().astimezone()
    session = call(api, "/api/sessions", REQUEST, "POST")
    inbox, stop = subscribe(api, session["id"])
    try:
        while True:
            at, m = next_message(inbox, sent + 120)
            if m["type"] == "training.progress":
                first = at - sent
                break
        call(api, f"/api/sessions/{session['id']}/cancel", method="POST")
        while True:
            _, m = next_message(inbox, sent + 240)
            if m["type"] == "session.status" and m["status"] == "CANCELLED":
                break
    finally:
        stop.set()
    events = call(api, f"/api/sessions/{session['id']}/events")["events"]
    at = {e["cause"]: datetime.fromisoformat(e["at"]) for e in reversed(events)}
    return {
        "session": session["id"],
        "first_step_s": round(first, 3),
        "launched_s": round((at["trainer_launched"] - wall).total_seconds(), 3),
        "training_s": round((at["trainer_started"] - wall).total_seconds(), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--api", default=f"http://127.0.0.1:{os.environ.get('COTRAIN_API_PORT', '8080')}")
    args = parser.parse_args()
    runs = [one(args.api) for _ in range(args.sessions)]
    firsts = [r["first_step_s"] for r in runs]
    summary = {
        "p50_s": round(statistics.median(firsts), 3),
        "p99_s": round(percentile(firsts, 99), 3),
        "p50_launched_s": round(statistics.median(r["launched_s"] for r in runs), 3),
        "p50_training_s": round(statistics.median(r["training_s"] for r in runs), 3),
    }
    command = f"bench/start_latency.py --sessions {args.sessions}"
    write_results("start_latency", args.sessions, summary, runs, command)
    print(
        f"create to the first step at the client over {args.sessions} sessions: p50 {summary['p50_s']} s,"
        f" p99 {summary['p99_s']} s (p50: trainer launched after {summary['p50_launched_s']} s,"
        f" training after {summary['p50_training_s']} s)"
    )


if __name__ == "__main__":
    main()
