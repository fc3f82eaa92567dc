"""Chaos run: sessions trained while their trainers, the worker, the API and the Temporal dev server
are SIGKILLed at random moments and PostgreSQL is restarted; nothing may be lost.

    ./cotrain up --detach
    .venv/bin/python bench/chaos.py [--sessions 10] [--faults 20] [--seed N]

Needs the stack `./cotrain up --detach` leaves (its supervisor starts again every part that dies).
First one session runs without faults: the reference. Then the others, the same request, are created
at once and queue for the worker's slot, and while they run the faults come one at a time, a random
2 to 6 s after the stack is healthy again: trainers, the worker JVM, the API and the Temporal dev
server in a shuffled spread, and one PostgreSQL restart (a fast shutdown; the supervisor starts it
again). Sessions are long enough (--steps) for the faults to land while they run; a fault
that could not be applied before they all ended counts as a failed run. It stops by itself: when
every session has ended, or at --deadline-s.

Checks: every session ends COMPLETED; its metrics hold every step exactly once; its final loss equals
the reference's, bit for bit (training resumes exactly on CPU). Prints a summary table, writes
bench/results/chaos.json, and exits 1 on any loss. tests/launcher runs a short variant (three
sessions, five faults) inside ./cotrain test.
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client import ROOT, call, write_results  # noqa: E402

FINAL = {"COMPLETED", "FAILED", "CANCELLED"}
KINDS = ("trainer", "worker", "api", "temporal")


def request(steps: int) -> dict:
    return {
        "name": "chaos",
        "description": "bench/chaos.py",
        "modelConfig": {"type": "llama2", "size": "debug", "precision": "fp32"},
        "trainingConfig": {
            "batchSize": 4,
            "learningRate": 0.003,
            "epochs": 1,
            "optimizer": "adamw",
            "maxSteps": steps,
        },
        "distributedConfig": {"nodes": 1, "gpusPerNode": 1, "strategy": "ddp"},
        "dataConfig": {"seqLength": 64},
        "checkpointConfig": {"interval": 10},
    }


class Stack:
    """The parts of a `./cotrain up` stack: their pids, their health, and the faults."""

    def __init__(self, api: str, storage: Path, env: dict | None = None):
        self.api, self.storage, self.env = api, storage, env or dict(os.environ)

    def pid(self, part: str) -> int:
        if part == "postgres":
            return int((self.storage / "services/postgres/postmaster.pid").read_text().split()[0])
        return int((self.storage / f"services/run/{part}.pid").read_text().split()[0])

    def trainers(self) -> list[int]:
        """Trainer processes of this stack (its storage root is in their command line)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"cotrain_core.train" in cmdline and str(self.storage).encode() in cmdline:
                found.append(int(entry.name))
        return found

    def healthy(self) -> bool:
        status = subprocess.run(
            [str(ROOT / "cotrain"), "status"], env=self.env, capture_output=True, text=True, timeout=60
        ).stdout
        states = dict(line.split()[:2] for line in status.splitlines() if line.startswith("  "))
        return all(states.get(part) == "healthy" for part in ("postgres", "temporal", "api", "worker"))

    def fault(self, kind: str) -> str | None:
        """Applies one fault; None when there was nothing to hit (no trainer running)."""
        if kind == "trainer":
            pids = self.trainers()
            if not pids:
                return None
            os.kill(random.choice(pids), signal.SIGKILL)
            return "SIGKILL trainer"
        if kind == "postgres":
            subprocess.run(
                [str(ROOT / "scripts/postgres.sh"), "stop", str(self.storage / "services/postgres")],
                check=True,
                capture_output=True,
                timeout=120,
            )
            return "PostgreSQL restart"
        os.kill(self.pid(kind), signal.SIGKILL)
        return f"SIGKILL {kind}"


def retrying(fn, seconds: float = 180):
    """fn(), retried while the API is down (it may be the part just killed)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def status(api: str, sid: str) -> str:
    return retrying(lambda: call(api, f"/api/sessions/{sid}"))["status"]


def steps_and_final_loss(api: str, sid: str) -> tuple[list[int], float | None]:
    rows = retrying(lambda: call(api, f"/api/sessions/{sid}/metrics?limit=10000"))["metrics"]
    return [r["step"] for r in rows], (rows[-1]["loss"] if rows else None)


def attempts(api: str, sid: str) -> int:
    return retrying(lambda: call(api, f"/api/sessions/{sid}"))["attempt"]


def wait_final(api: str, sids: list[str], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if all(status(api, sid) in FINAL for sid in sids):
            return True
        time.sleep(1)
    return False


def run(stack: Stack, sessions: int, faults: int, steps: int, seed: int, deadline_s: float) -> dict:
    rng = random.Random(seed)
    random.seed(seed)
    started = time.monotonic()
    deadline = started + deadline_s

    reference = retrying(lambda: call(stack.api, "/api/sessions", request(steps), "POST"))["id"]
    if not wait_final(stack.api, [reference], deadline) or status(stack.api, reference) != "COMPLETED":
        raise RuntimeError(f"the reference session {reference} did not complete")
    _, reference_loss = steps_and_final_loss(stack.api, reference)

    sids = [
        retrying(lambda: call(stack.api, "/api/sessions", request(steps), "POST"))["id"]
        for _ in range(sessions)
    ]
    plan = ["postgres"] + [KINDS[i % len(KINDS)] for i in range(faults - 1)]
    rng.shuffle(plan)
    applied: list[dict] = []
    while plan and time.monotonic() < deadline:
        if all(status(stack.api, sid) in FINAL for sid in sids):
            break
        while not stack.healthy() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(rng.uniform(2, 6))
        what = stack.fault(plan[0])
        if what is None:
            continue  # no trainer right now: try again at the next moment
        plan.pop(0)
        applied.append({"at_s": round(time.monotonic() - started, 1), "fault": what})
        print(f"{applied[-1]['at_s']:7.1f} s  {what}", flush=True)
    all_final = wait_final(stack.api, sids, deadline)

    rows = []
    for sid in sids:
        stored, loss = steps_and_final_loss(stack.api, sid)
        rows.append(
            {
                "session": sid,
                "status": status(stack.api, sid),
                "attempts": attempts(stack.api, sid),
                "steps_stored": len(stored),
                "each_step_once": stored == list(range(1, steps + 1)),
                "final_loss": loss,
                "loss_equal": loss == reference_loss,
            }
        )
    ok = (
        all_final
        and not plan
        and all(r["status"] == "COMPLETED" and r["each_step_once"] and r["loss_equal"] for r in rows)
    )
    return {
        "ok": ok,
        "seed": seed,
        "reference_loss": reference_loss,
        "faults": applied,
        "faults_not_applied": plan,
        "seconds": round(time.monotonic() - started, 1),
        "sessions": rows,
    }


def print_summary(result: dict) -> None:
    print(f"\n{'session':36}  {'status':9}  attempts  steps  once  final loss          equal")
    for r in result["sessions"]:
        print(
            f"{r['session']:36}  {r['status']:9}  {r['attempts']:8}  {r['steps_stored']:5}  "
            f"{'yes' if r['each_step_once'] else 'NO':4}  {r['final_loss']!r:18}  "
            f"{'yes' if r['loss_equal'] else 'NO'}"
        )
    print(
        f"\n{len(result['faults'])} faults in {result['seconds']} s (seed {result['seed']}), "
        f"reference loss {result['reference_loss']!r}: {'nothing lost' if result['ok'] else 'LOSS'}"
    )
    if result["faults_not_applied"]:
        print(f"not applied before the end: {result['faults_not_applied']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--deadline-s", type=float, default=1800)
    parser.add_argument("--api", default=f"http://127.0.0.1:{os.environ.get('COTRAIN_API_PORT', '8080')}")
    args = parser.parse_args()
    storage = Path(os.environ.get("COTRAIN_STORAGE_ROOT", ROOT / "var/cotrain")).resolve()
    result = run(Stack(args.api, storage), args.sessions, args.faults, args.steps, args.seed, args.deadline_s)
    print_summary(result)
    write_results(
        "chaos",
        1,
        {"ok": result["ok"], "faults_applied": len(result["faults"]), "seconds": result["seconds"]},
        [result],
        command=f"bench/chaos.py --sessions {args.sessions} --faults {args.faults} --seed {args.seed}",
    )
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
