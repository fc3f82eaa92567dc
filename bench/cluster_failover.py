"""Cluster failover benchmark: from `docker kill` of a worker container to the first resumed step
on the other worker container.

    ./cotrain cluster up
    .venv/bin/python bench/cluster_failover.py [--trials 3]

Runs against the loopback cluster (docker-compose.yml + docker-compose.loopback.yml: worker hosts
loopback-a and loopback-b). Each trial starts a long session of the debug-size Llama 2 (checkpoint
every 25 steps), waits until a WebSocket client has seen step 60, kills the container of the
worker that runs it, and then measures at the same client:
  - detect: until the session is QUEUED again for a retry (the heartbeat timeout at work),
  - resume: until the first `training.progress` of the attempt resumed on the other container,
  - lost steps: the newest step seen before the kill minus the step the attempt resumed from.
The session is then cancelled, the killed container started again (a `docker kill` counts as a
stop made by hand, which the restart policy leaves alone), and the next trial waits for both
hosts. Prints one line per trial and the medians, and writes them with the machine's description
to bench/results/cluster_failover.json.
"""

import argparse
import os
import re
import statistics
import subprocess
import time

from client import call, next_message, resumable_request, subscribe, write_results

REQUEST = resumable_request("cluster failover bench", "bench/cluster_failover.py")
KILL_AT_STEP = 60
HOSTS = ("loopback-a", "loopback-b")


def container(host: str) -> str:
    return f"cotrain-worker-{host.rsplit('-', 1)[1]}-1"


def wait_for_hosts(api: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            alive = {w["id"] for w in call(api, "/api/workers")["workers"] if w["alive"]}
            if alive >= set(HOSTS):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"worker hosts {HOSTS} not both alive")


def trial(api: str) -> dict:
    session = call(api, "/api/sessions", REQUEST, "POST")
    inbox, stop = subscribe(api, session["id"])
    try:
        deadline = time.monotonic() + 300
        newest, host = 0, None
        while newest < KILL_AT_STEP:
            _, m = next_message(inbox, deadline)
            if m["type"] == "training.progress":
                newest = max(newest, m["step"])
            elif m["type"] == "session.status" and m.get("cause") == "trainer_launched":
                host = re.search(r" on (\S+),", m["message"]).group(1)
        subprocess.run(["docker", "kill", container(host)], check=True, capture_output=True)
        killed = time.monotonic()
        detected = resumed_at = resumed_from = resumed_on = None
        while resumed_at is None:
            at, m = next_message(inbox, killed + 300)
            if m["type"] == "training.progress" and resumed_from is None:
                newest = max(newest, m["step"])  # sent before the kill, delivered after it
            elif m["type"] == "session.status" and m.get("cause") == "retry" and detected is None:
                detected = at
            elif m["type"] == "session.status" and m.get("cause") == "trainer_launched":
                resumed_on = re.search(r" on (\S+),", m["message"]).group(1)
            elif m["type"] == "session.status" and m.get("cause") == "trainer_started":
                found = re.search(r"resumed from step (\d+)", m.get("message") or "")
                resumed_from = int(found.group(1)) if found else 0
            elif m["type"] == "training.progress" and resumed_from is not None:
                resumed_at = at
        return {
            "session": session["id"],
            "killed": host,
            "resumed_on": resumed_on,
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
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument(
        "--api", default=f"http://127.0.0.1:{os.environ.get('COTRAIN_CLUSTER_API_PORT', '18080')}"
    )
    args = parser.parse_args()
    if not os.environ.get("COTRAIN_TOKEN"):
        os.environ["COTRAIN_TOKEN"] = subprocess.run(
            ["docker", "exec", "cotrain-api-1", "cat", "/var/lib/cotrain/storage/admin-token"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    results = []
    for n in range(1, args.trials + 1):
        for h in HOSTS:
            subprocess.run(["docker", "start", container(h)], check=True, capture_output=True)
        wait_for_hosts(args.api)
        result = trial(args.api)
        results.append(result)
        print(
            f"trial {n}: killed {result['killed']}, queued again after {result['detect_s']} s, "
            f"first resumed step on {result['resumed_on']} after {result['resume_s']} s, "
            f"{result['lost_steps']} steps lost",
            flush=True,
        )
    summary = write_results(
        "cluster_failover",
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
