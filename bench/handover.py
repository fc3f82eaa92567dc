"""Handover benchmark: how long a device stays idle between one session and the next in the queue.

    ./cotrain up --detach
    .venv/bin/python bench/handover.py [--trials 5] [--api http://127.0.0.1:8080]

Each trial starts a short session A of the debug-size Llama 2 and, once A trains, a session B
that must wait for A's slot (the one-machine stack has one). At WebSocket clients of both it
measures, from A's last step:
  - placed: until B's `session.status` STARTING (A's trainer exits, its attempt releases the slot,
    and that release places B and wakes its workflow, which launches B's trainer),
  - first step: until B's first `training.progress` (B's trainer imports, builds and loads too).
Prints one line per trial and the medians, and writes them with the machine's description to
bench/results/handover.json.
"""

import argparse
import os
import statistics
import time

from client import call, next_message, subscribe, write_results


def request(name: str, steps: int) -> dict:
    return {
        "name": name,
        "description": "bench/handover.py",
        "modelConfig": {"type": "llama2", "size": "debug", "precision": "fp32"},
        "trainingConfig": {
            "batchSize": 4,
            "learningRate": 0.003,
            "epochs": 10,
            "optimizer": "adamw",
            "maxSteps": steps,
        },
        "distributedConfig": {"nodes": 1, "gpusPerNode": 1, "strategy": "ddp"},
        "dataConfig": {"seqLength": 64},
        "checkpointConfig": {"interval": 0},
    }


def trial(api: str) -> dict:
    a = call(api, "/api/sessions", request("handover A", 150), "POST")
    a_inbox, a_stop = subscribe(api, a["id"])
    b = None
    try:
        deadline = time.monotonic() + 300
        last_step = None
        while True:
            at, m = next_message(a_inbox, deadline)
            if m["type"] == "training.progress":
                last_step = at
                if b is None:
                    b = call(api, "/api/sessions", request("handover B", 20), "POST")
                    b_inbox, b_stop = subscribe(api, b["id"])
            elif m["type"] == "session.status" and m["status"] == "COMPLETED":
                break
        placed = first_step = None
        while first_step is None:
            at, m = next_message(b_inbox, deadline)
            if m["type"] == "session.status" and m["status"] == "STARTING" and placed is None:
                placed = at
            elif m["type"] == "training.progress":
                first_step = at
        b_stop.set()
        return {
            "a": a["id"],
            "b": b["id"],
            "placed_s": round(placed - last_step, 2),
            "first_step_s": round(first_step - last_step, 2),
        }
    finally:
        a_stop.set()
        if b is not None:
            try:
                call(api, f"/api/sessions/{b['id']}/cancel", method="POST")
            except OSError:
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--api", default=f"http://127.0.0.1:{os.environ.get('COTRAIN_API_PORT', '8080')}")
    args = parser.parse_args()
    results = []
    for n in range(1, args.trials + 1):
        result = trial(args.api)
        results.append(result)
        print(
            f"trial {n}: next session placed {result['placed_s']} s and its first step "
            f"{result['first_step_s']} s after the last step of the previous one",
            flush=True,
        )
        time.sleep(2)  # B's cancel lets go of the slot
    summary = write_results(
        "handover",
        args.trials,
        {
            "median_placed_s": statistics.median(r["placed_s"] for r in results),
            "median_first_step_s": statistics.median(r["first_step_s"] for r in results),
        },
        results,
    )
    print(
        f"median: placed after {summary['median_placed_s']} s, first step after "
        f"{summary['median_first_step_s']} s"
    )


if __name__ == "__main__":
    main()
