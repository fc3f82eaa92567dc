"""Create latency: how long `POST /api/sessions` takes, one request at a time.

    ./cotrain up --detach
    .venv/bin/python bench/create.py [--trials 100] [--api http://127.0.0.1:8080]

Each trial creates a session of the debug-size Llama 2 and measures the request's round trip,
then cancels the session (not timed), so that no trainer competes with the API for the machine.
A second series sends a combination the trainer refuses (a DiLoCo checkpoint interval that is not
a multiple of innerSteps) and measures the 400. Prints the medians and the 90th percentiles and
writes every trial with the machine's description to bench/results/create.json.
"""

import argparse
import json
import statistics
import time
import urllib.error
import urllib.request

from client import token, write_results


def body(refused: bool) -> dict:
    distributed = {"nodes": 1, "gpusPerNode": 1, "strategy": "ddp"}
    if refused:
        distributed = {**distributed, "strategy": "diloco", "diloco": {"innerSteps": 50}}
    return {
        "name": "bench/create.py",
        "modelConfig": {"type": "llama2", "size": "debug", "precision": "fp32"},
        "trainingConfig": {
            "batchSize": 4,
            "learningRate": 0.003,
            "epochs": 1,
            "optimizer": "adamw",
            "maxSteps": 100,
        },
        "distributedConfig": distributed,
        "checkpointConfig": {"interval": 30 if refused else 50},
    }


def post(api: str, path: str, payload: dict | None) -> tuple[int, dict]:
    data = None if payload is None else json.dumps(payload).encode()
    headers = {"Authorization": f"Bearer {token()}", "Content-Type": "application/json"}
    request = urllib.request.Request(api + path, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def series(api: str, trials: int, refused: bool) -> list[float]:
    millis = []
    for _ in range(trials):
        start = time.perf_counter()
        status, answer = post(api, "/api/sessions", body(refused))
        millis.append((time.perf_counter() - start) * 1000)
        if status == 201:
            post(api, f"/api/sessions/{answer['id']}/cancel", None)
        elif not refused or status != 400:
            raise SystemExit(f"unexpected answer {status}: {answer}")
    return millis


def p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--api", default="http://127.0.0.1:8080")
    args = parser.parse_args()
    series(args.api, 5, refused=False)  # warm-up: JIT, connection pools, the worker's checker
    accepted = series(args.api, args.trials, refused=False)
    refusals = series(args.api, args.trials, refused=True)
    summary = {
        "created_median_ms": round(statistics.median(accepted), 1),
        "created_p90_ms": round(p90(accepted), 1),
        "refused_median_ms": round(statistics.median(refusals), 1),
        "refused_p90_ms": round(p90(refusals), 1),
    }
    print(json.dumps(summary))
    write_results(
        "create",
        args.trials,
        summary,
        [
            {"created_ms": round(a, 1), "refused_ms": round(r, 1)}
            for a, r in zip(accepted, refusals, strict=True)
        ],
    )


if __name__ == "__main__":
    main()
