"""Creation rate: sessions created per second through the API by concurrent clients (bench/create.py
measures one request at a time).

    ./cotrain up --detach
    .venv/bin/python bench/create_rate.py [--count 200] [--clients 8] [--api http://127.0.0.1:8080]

--clients threads POST /api/sessions, --count sessions in all, each a load-mode session of one
step (`loadConfig`, docs/config.md), and it measures creations per second (count / wall time from
the first request to the last answer) and the p50 / p99 of one request's latency (201 received).
Each creation starts the session's workflow in Temporal and stores its row, as in real use; the
worker places and runs the sessions meanwhile, as it would. Afterwards it waits until they all
ended (each has one step), and cancels those that did not within --wait seconds. Writes
bench/results/create_rate.json.
"""

import argparse
import os
import threading
import time

from client import call, write_results

REQUEST = {
    "name": "create rate bench",
    "description": "bench/create_rate.py",
    "modelConfig": {"type": "llama2", "size": "debug", "precision": "fp32"},
    "trainingConfig": {
        "batchSize": 8,
        "learningRate": 0.003,
        "epochs": 1,
        "optimizer": "adamw",
        "maxSteps": 1,
    },
    "distributedConfig": {"nodes": 1, "gpusPerNode": 1, "strategy": "ddp"},
    "checkpointConfig": {"interval": 0},
    "loadConfig": {"eventsPerSecond": 10},
}


FINAL = ("COMPLETED", "FAILED", "CANCELLED")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8080")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--wait", type=int, default=300, help="seconds to wait for the sessions to end")
    args = parser.parse_args()

    latencies: list[float] = []
    ids: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    left = iter(range(args.count))

    def client() -> None:
        while True:
            with lock:
                i = next(left, None)
            if i is None:
                return
            sent = time.monotonic()
            try:
                body = {**REQUEST, "name": f"create rate bench #{i}"}
                created = call(args.api, "/api/sessions", body, "POST")
            except OSError as e:
                with lock:
                    errors.append(str(e))
                continue
            with lock:
                latencies.append(time.monotonic() - sent)
                ids.append(created["id"])

    load_before = os.getloadavg()
    began = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began

    deadline = time.monotonic() + args.wait
    running = list(ids)
    while running and time.monotonic() < deadline:
        running = [i for i in running if call(args.api, f"/api/sessions/{i}")["status"] not in FINAL]
        time.sleep(1)
    for session_id in running:
        try:
            call(args.api, f"/api/sessions/{session_id}/cancel", method="POST")
        except OSError:
            pass  # it ended meanwhile

    ms = [x * 1000 for x in latencies]
    figures = {
        "count": args.count,
        "clients": args.clients,
        "created": len(ids),
        "errors": len(errors),
        "per_second": round(len(ids) / wall, 1),
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "wall_s": round(wall, 2),
        "not_ended_after_wait": len(running),
        "load_average_before": [round(x, 2) for x in load_before],
        "where": "one machine runs the API, the worker, PostgreSQL, Temporal and these clients",
    }
    command = f"bench/create_rate.py --count {args.count} --clients {args.clients}"
    write_results("create_rate", 1, figures, [{"errors": errors[:10]}], command)
    print(
        f"{len(ids)} sessions created by {args.clients} clients in {wall:.1f} s: "
        f"{figures['per_second']}/s, POST p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms "
        f"(max {figures['max_ms']}), {len(errors)} errors; written to bench/results/create_rate.json"
    )


if __name__ == "__main__":
    main()
