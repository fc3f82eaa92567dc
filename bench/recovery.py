"""Recovery benchmark: from a fault to the first step after it at a WebSocket client, for each part.

    ./cotrain up --detach
    .venv/bin/python bench/recovery.py [--trials 3] [--parts trainer,worker,api,temporal,postgres]

Each trial starts a long session of the debug-size Llama 2 (checkpoint every 25 steps), waits until
a WebSocket client (one that reconnects, asking for the steps it missed) has seen step 60, and then
  - trainer: SIGKILLs the trainer process,
  - worker: SIGKILLs the worker JVM (the pid in services/run/worker.pid),
  - api: SIGKILLs the API (the client's connection drops; it reconnects when the API is back),
  - temporal: SIGKILLs the Temporal dev server,
  - postgres: restarts PostgreSQL (a fast shutdown; the supervisor starts it again),
and measures at the same client, from the fault:
  - resume: for trainer and worker, until the first `training.progress` of the resumed attempt
    (detect: until the session is QUEUED again for a retry; lost steps: the newest step seen
    before the fault minus the step the attempt resumed from); for the others, whose trainer goes
    on, until the first `training.progress` of a step stored once the fault was applied
    (for PostgreSQL: once it was down).
The supervisor that `./cotrain up` leaves starts the killed part again. The session is then
cancelled, and the next trial waits for a healthy stack. Prints one line per trial and the medians
per part, and writes them with the machine's description to bench/results/recovery.json.
"""

import argparse
import os
import re
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from chaos import Stack
from client import ROOT, call, next_message, resumable_request, subscribe, write_results

REQUEST = resumable_request("recovery bench", "bench/recovery.py")
KILL_AT_STEP = 60


PARTS = ("trainer", "worker", "api", "temporal", "postgres")


def wait_healthy(stack: Stack, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not stack.healthy():
        if time.monotonic() > deadline:
            raise TimeoutError("the stack is not healthy")
        time.sleep(0.5)


def trial(stack: Stack, part: str) -> dict:
    api = stack.api
    session = call(api, "/api/sessions", REQUEST, "POST")
    inbox, stop = subscribe(api, session["id"], reconnect=True)
    try:
        deadline = time.monotonic() + 300
        newest = 0
        while newest < KILL_AT_STEP:
            _, m = next_message(inbox, deadline)
            if m["type"] == "training.progress":
                newest = max(newest, m["step"])
        faulted = time.monotonic()  # before: stopping PostgreSQL takes a while to return
        stack.fault(part)
        wall = datetime.now(UTC)  # after: a step stored while PostgreSQL shut down is not a resumed one
        restarts = part in ("trainer", "worker")
        detected = resumed_at = resumed_from = None
        while resumed_at is None:
            at, m = next_message(inbox, faulted + 300)
            if m["type"] == "session.status" and m.get("cause") == "retry" and detected is None:
                detected = at
            elif m["type"] == "session.status" and m.get("cause") == "trainer_started":
                found = re.search(r"resumed from step (\d+)", m.get("message") or "")
                resumed_from = int(found.group(1)) if found else 0
            elif m["type"] == "training.progress":
                # A progress without "at" is the snapshot of the newest step the API sends on
                # (re)subscribing, not a newly stored one.
                if not restarts and m.get("at") and datetime.fromisoformat(m["at"]) > wall:
                    resumed_at = at
                elif restarts and resumed_from is None:
                    newest = max(newest, m["step"])  # sent before the fault, delivered after it
                elif restarts:
                    resumed_at = at
        return {
            "part": part,
            "session": session["id"],
            "detect_s": round(detected - faulted, 2) if detected else None,
            "resume_s": round(resumed_at - faulted, 2),
            "lost_steps": newest - resumed_from if restarts else 0,
        }
    finally:
        stop.set()
        try:
            call(api, f"/api/sessions/{session['id']}/cancel", method="POST")
        except OSError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument(
        "--api",
        default=f"http://127.0.0.1:{os.environ.get('COTRAIN_API_PORT', '8080')}",
    )
    args = parser.parse_args()
    storage = Path(os.environ.get("COTRAIN_STORAGE_ROOT", ROOT / "var/cotrain")).resolve()
    stack = Stack(args.api, storage)

    results, medians = [], {}
    for part in args.parts.split(","):
        mine = []
        for n in range(1, args.trials + 1):
            wait_healthy(stack)
            result = trial(stack, part)
            mine.append(result)
            print(
                f"{part} trial {n}: first step after the fault at the client after "
                f"{result['resume_s']} s"
                + (
                    f" (queued again after {result['detect_s']} s, {result['lost_steps']} steps lost)"
                    if part in ("trainer", "worker")
                    else ""
                ),
                flush=True,
            )
        results += mine
        medians[part] = {
            "median_resume_s": statistics.median(r["resume_s"] for r in mine),
            "median_detect_s": statistics.median(r["detect_s"] for r in mine if r["detect_s"])
            if any(r["detect_s"] for r in mine)
            else None,
            "median_lost_steps": statistics.median(r["lost_steps"] for r in mine),
        }
        print(f"{part} median: {medians[part]}", flush=True)
    write_results(
        "recovery",
        args.trials,
        {"by_part": medians},
        results,
        command=f"bench/recovery.py --trials {args.trials} --parts {args.parts}",
    )


if __name__ == "__main__":
    main()
