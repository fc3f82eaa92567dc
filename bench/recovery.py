"""Recovery benchmark: from SIGKILL of the worker JVM to the first step of the resumed attempt.

    ./cotrain up --detach
    .venv/bin/python bench/recovery.py [--trials 5] [--api http://127.0.0.1:8080]

Each trial starts a long session of the debug-size Llama 2 (checkpoint every 25 steps), waits until
a WebSocket client has seen step 60, SIGKILLs the worker JVM (the pid in the storage root's
services/run/worker.pid), and then measures, at the same client:
  - detect: until the session is QUEUED again for a retry (the heartbeat timeout at work),
  - resume: until the first `training.progress` of the resumed attempt,
  - lost steps: the newest step seen before the kill minus the step the attempt resumed from.
The supervisor that `./cotrain up` leaves restarts the worker. The session is then cancelled, and
the next trial waits for a healthy worker. Prints one line per trial and the medians, and writes
them with the machine's description to bench/results/recovery.json.
"""

import argparse
import os
import re
import signal
import statistics
import time
from pathlib import Path

from client import ROOT, call, next_message, subscribe, write_results

REQUEST = {
    "name": "recovery bench",
    "description": "bench/recovery.py",
    "modelConfig": {"type": "llama2", "size": "debug", "precision": "fp32"},
    "trainingConfig": {
        "batchSize": 4,
        "learningRate": 0.003,
        "epochs": 10,
        "optimizer": "adamw",
        "maxSteps": 10000,
    },
    "distributedConfig": {"nodes": 1, "gpusPerNode": 1, "strategy": "ddp"},
    "dataConfig": {"seqLength": 64},
    "checkpointConfig": {"interval": 25},
}
KILL_AT_STEP = 60


def worker_pid(storage: Path) -> int:
    # "PID START" (the start time guards against a reused pid)
    return int((storage / "services/run/worker.pid").read_text().split()[0])


def wait_for_worker(api: str, storage: Path, timeout: float = 120) -> None:
    """Until the worker's pid is alive and it logged that it is ready."""
    deadline = time.monotonic() + timeout
    log = storage / "logs/system/worker.log"
    while time.monotonic() < deadline:
        try:
            pid = worker_pid(storage)
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
            if stat != "Z" and "Cotrain worker ready" in log.read_text()[-20000:]:
                return
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.5)
    raise TimeoutError("no healthy worker")


def trial(api: str, storage: Path) -> dict:
    session = call(api, "/api/sessions", REQUEST, "POST")
    inbox, stop = subscribe(api, session["id"])
    try:
        deadline = time.monotonic() + 300
        newest = 0
        while newest < KILL_AT_STEP:
            _, m = next_message(inbox, deadline)
            if m["type"] == "training.progress":
                newest = max(newest, m["step"])
        os.kill(worker_pid(storage), signal.SIGKILL)
        killed = time.monotonic()
        detected = resumed_at = resumed_from = None
        while resumed_at is None:
            at, m = next_message(inbox, killed + 300)
            if m["type"] == "training.progress" and resumed_from is None:
                newest = max(newest, m["step"])  # sent before the kill, delivered after it
            elif m["type"] == "session.status" and m.get("cause") == "retry" and detected is None:
                detected = at
            elif m["type"] == "session.status" and m.get("cause") == "trainer_started":
                found = re.search(r"resumed from step (\d+)", m.get("message") or "")
                resumed_from = int(found.group(1)) if found else 0
            elif m["type"] == "training.progress" and resumed_from is not None:
                resumed_at = at
        return {
            "session": session["id"],
            "detect_s": round(detected - killed, 2) if detected else None,
            "resume_s": round(resumed_at - killed, 2),
            "lost_steps": newest - resumed_from,
        }
    finally:
        stop.set()
        try:
            call(api, f"/api/sessions/{session['id']}/cancel", method="POST")
        except OSError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument(
        "--api",
        default=f"http://127.0.0.1:{os.environ.get('COTRAIN_API_PORT', '8080')}",
    )
    args = parser.parse_args()
    storage = Path(os.environ.get("COTRAIN_STORAGE_ROOT", ROOT / "var/cotrain")).resolve()

    results = []
    for n in range(1, args.trials + 1):
        wait_for_worker(args.api, storage)
        result = trial(args.api, storage)
        results.append(result)
        print(
            f"trial {n}: queued again after {result['detect_s']} s, first resumed step after "
            f"{result['resume_s']} s, {result['lost_steps']} steps lost",
            flush=True,
        )
    summary = write_results(
        "recovery",
        args.trials,
        {
            "median_detect_s": statistics.median(r["detect_s"] for r in results if r["detect_s"]),
            "median_resume_s": statistics.median(r["resume_s"] for r in results),
            "median_lost_steps": statistics.median(r["lost_steps"] for r in results),
        },
        results,
    )
    print(
        f"median: queued again after {summary['median_detect_s']} s, first resumed step after "
        f"{summary['median_resume_s']} s, {summary['median_lost_steps']} steps lost"
    )


if __name__ == "__main__":
    main()
