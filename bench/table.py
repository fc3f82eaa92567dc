"""Every headline figure of the benchmarks in one Markdown table, read from their results files.

    .venv/bin/python bench/table.py        # the README's "Performance and reliability" table

Each row: the figure, its value (and the aim where there is one), the command that produced it
(run from the repository root against the stack it names), the machine and the date of the run.
bench/run_all.sh runs the system benchmarks and then prints this table.
"""

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def relay(d: dict, sessions: int, stalled: bool) -> dict:
    return next(t for t in d["trials"] if t["sessions"] == sessions and bool(t["stalled_client"]) == stalled)


def chaos_sessions(d: dict) -> str:
    run = d["trials"][0]
    done = sum(
        s["status"] == "COMPLETED" and s["each_step_once"] and s["loss_equal"] for s in run["sessions"]
    )
    return (
        f"{done} of {len(run['sessions'])} sessions COMPLETED, every step stored once, final loss equal to a"
        f" fault-free run's; {len(run['faults'])} faults in {run['seconds']:.0f} s"
    )


# (results file, figure, value from the results, aim)
FIGURES = [
    (
        "overhead",
        "Throughput through the API, of a bare trainer (tiny example, 200 steps)",
        lambda d: f"x{d['tokens_per_s_ratio']:.3f}",
        "at least x0.99",
    ),
    (
        "overhead",
        "Extra time to the first step at a WebSocket client, against a bare trainer",
        lambda d: f"{d['extra_first_step_s']:+.2f} s",
        "under 0.5 s",
    ),
    (
        "overhead",
        "Extra time to the last step / to COMPLETED (with the model's evaluation)",
        lambda d: f"{d['extra_last_step_s']:+.2f} s / {d['extra_end_s']:+.2f} s",
        None,
    ),
    (
        "start_latency",
        "REST create to the first step at a WebSocket client, p50 / p99",
        lambda d: f"{d['p50_s']:.2f} s / {d['p99_s']:.2f} s",
        None,
    ),
    (
        "create",
        "A create answered (201), median / p90",
        lambda d: f"{d['created_median_ms']:.0f} ms / {d['created_p90_ms']:.0f} ms",
        None,
    ),
    (
        "create_rate",
        "Creates per second, 8 concurrent clients",
        lambda d: f"{d['per_second']:.1f}/s, {d['errors']} errors",
        None,
    ),
    (
        "handover",
        "A freed slot to the next session's first step",
        lambda d: f"{d['median_first_step_s']:.1f} s",
        None,
    ),
    (
        "placement",
        "Placement decisions per second (100 hosts, 800 devices, 1000 queued)",
        lambda d: f"{d['decisions_per_s']:.0f}/s",
        None,
    ),
    (
        "relay",
        "Load: 100 sessions x 10 steps/s, steps stored of emitted",
        lambda d: "{stored} of {emitted}".format(**relay(d, 100, False)["steps"]),
        "all of them",
    ),
    (
        "relay",
        "Load: relay latency p50 / p99 at 100 sessions (with a stalled client)",
        lambda d: "{} / {} ms ({} ms p99)".format(
            relay(d, 100, False)["list_channel"]["p50_ms"],
            relay(d, 100, False)["list_channel"]["p99_ms"],
            relay(d, 100, True)["list_channel"]["p99_ms"],
        ),
        "p99 under 100 ms",
    ),
    (
        "relay",
        "Load: CPU per part at 100 sessions (% of one core)",
        lambda d: ", ".join(
            f"{k} {v}" for k, v in relay(d, 100, False)["cpu_percent_in_steady_window"].items()
        ),
        None,
    ),
    (
        "relay",
        "Load: peak resident memory per part at 100 sessions (MiB)",
        lambda d: ", ".join(
            f"{k} {v:.0f}" for k, v in relay(d, 100, False)["peak_memory_mib_in_steady_window"].items()
        ),
        None,
    ),
    (
        "relay",
        "Load: database rows written per second at 100 sessions",
        lambda d: f"{relay(d, 100, False)['database_rows_written_per_s']:.0f}/s",
        None,
    ),
    (
        "recovery",
        "SIGKILL of the trainer to the first resumed step at the client",
        lambda d: f"{d['by_part']['trainer']['median_resume_s']:.1f} s",
        None,
    ),
    (
        "recovery",
        "SIGKILL of the worker JVM to the first resumed step",
        lambda d: f"{d['by_part']['worker']['median_resume_s']:.1f} s",
        None,
    ),
    (
        "recovery",
        "SIGKILL of the API to the first new step at the (reconnecting) client",
        lambda d: f"{d['by_part']['api']['median_resume_s']:.1f} s",
        None,
    ),
    (
        "recovery",
        "SIGKILL of the Temporal dev server to the first new step at the client (training goes on)",
        lambda d: f"{d['by_part']['temporal']['median_resume_s']:.2f} s",
        None,
    ),
    (
        "recovery",
        "PostgreSQL stopped (fast shutdown) to the first step stored after its restart, at the client",
        lambda d: f"{d['by_part']['postgres']['median_resume_s']:.1f} s",
        None,
    ),
    (
        "cluster_failover",
        "Cluster: `docker kill` of a worker container to the first resumed step on another",
        lambda d: f"{d['median_resume_s']:.1f} s",
        None,
    ),
    (
        "chaos",
        "Chaos: SIGKILLs of trainers, worker, API, Temporal and a PostgreSQL restart",
        chaos_sessions,
        "nothing lost",
    ),
]


def date_of(path: Path, d: dict) -> str:
    if d.get("date"):
        return d["date"]
    out = subprocess.run(
        ["git", "log", "-1", "--format=%cs", "--", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    return out.stdout.strip() or "not committed"


def main() -> None:
    print("| figure | value | aim | command | machine | date |")
    print("|---|---|---|---|---|---|")
    for name, figure, value, aim in FIGURES:
        path = ROOT / "bench/results" / f"{name}.json"
        if not path.exists():
            print(f"| {figure} | not measured yet | {aim or ''} | `bench/{name}` | | |")
            continue
        d = json.loads(path.read_text())
        try:
            shown = value(d)
        except (KeyError, StopIteration, IndexError):
            shown = "not in this results file"
        command = d["command"]
        if command.startswith("bench/") and ".py" in command.split()[0]:
            command = ".venv/bin/python " + command
        machine = ", ".join(f for f in d["machine"].split(", ")[:3] if not f.startswith("Linux-"))
        print(f"| {figure} | {shown} | {aim or ''} | `{command}` | {machine} | {date_of(path, d)} |")


if __name__ == "__main__":
    main()
