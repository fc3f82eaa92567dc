"""Relay benchmark: latency from the worker's publish of a step to the WebSocket clients.

    COTRAIN_TRAINING_SLOTS=100 ./cotrain up --detach
    .venv/bin/python bench/relay.py [--sessions 1,10,100] [--rate 10] [--seconds 90] [--api URL]

For each N of --sessions it creates N sessions in the trainer's load-generating mode
(`loadConfig`, docs/config.md: no model, --rate steps per second each for --seconds), follows each
on a WebSocket of its own and all of them on one client of the list channel `/ws/sessions`, and
takes for every `training.progress` the receive time minus its `at` (when the worker stored and
NOTIFYed the step). Percentiles are over the steady window, while all N sessions emit (from the
newest session's first step to the oldest one's last); the whole run is reported too. Each N runs
twice: as is, and with one stalled client, a WebSocket of the list channel (which carries every
session's events) that never reads after its handshake, with a small receive buffer, so that
the server's sends to it block; the other clients must not be delayed. It also counts the steps
the trainers emitted, stored (GET .../metrics) and received, and for each part of the stack the
CPU it used and its peak resident memory in the steady window, and the rows written per second
to the database then (pg_stat_database, by psql). The worker needs N training slots (COTRAIN_TRAINING_SLOTS).
Prints a table and writes bench/results/relay.json.
"""

import argparse
import asyncio
import base64
import fcntl
import json
import os
import socket
import struct
import subprocess
import termios
import time
import urllib.parse
from datetime import datetime
from pathlib import Path

from client import ROOT, call, machine, token, write_results
from websockets.asyncio.client import connect

FINAL = ("COMPLETED", "FAILED", "CANCELLED")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def request(name: str, steps: int, rate: float) -> dict:
    return {
        "name": name,
        "description": "bench/relay.py",
        "modelConfig": {"type": "llama2", "size": "debug", "precision": "fp32"},
        "trainingConfig": {
            "batchSize": 8,
            "learningRate": 0.003,
            "epochs": 1,
            "optimizer": "adamw",
            "maxSteps": steps,
        },
        "distributedConfig": {"nodes": 1, "gpusPerNode": 1, "strategy": "ddp"},
        "checkpointConfig": {"interval": 100},
        "loadConfig": {"eventsPerSecond": rate},
    }


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def epoch_of(at: str) -> float:
    return datetime.fromisoformat(at).timestamp()


# --- CPU used by each part of the stack (from /proc), to say where the time goes -------------


def storage_root() -> Path:
    return Path(os.environ.get("COTRAIN_STORAGE_ROOT", ROOT / "var/cotrain"))


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, CPU seconds, CPU seconds of its children that exited) of a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return int(fields[1]), own, (int(fields[13]) + int(fields[14])) / CLOCK_TICKS


def _part_pids() -> dict[str, int | None]:
    run = storage_root() / "services/run"
    return {
        "api": _pid(run / "api.pid"),
        "worker": _pid(run / "worker.pid"),
        "temporal": _pid(run / "temporal.pid"),
        "postgres": _pid(storage_root() / "services/postgres/postmaster.pid"),
    }


def _all_stats() -> dict[int, tuple[int, float, float]]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (s := _stat(int(entry))):
            stats[int(entry)] = s
    return stats


def cpu_by_part() -> dict[str, float]:
    """CPU seconds so far of the API, the worker JVM, its trainers, PostgreSQL, Temporal, and this
    benchmark (its WebSocket clients)."""
    parts = _part_pids()
    stats = _all_stats()
    cpu = {name: (stats[pid][1] if pid in stats else 0.0) for name, pid in parts.items()}
    # Children count too, the live ones and those that exited: trainers, PostgreSQL's backends.
    worker, postgres = stats.get(parts["worker"]), stats.get(parts["postgres"])
    cpu["trainers"] = worker[2] if worker else 0.0
    cpu["postgres"] += postgres[2] if postgres else 0.0
    for parent, seconds, _ in stats.values():
        if parent == parts["worker"]:
            cpu["trainers"] += seconds
        elif parent == parts["postgres"]:
            cpu["postgres"] += seconds
    cpu["bench clients"] = sum(os.times()[:2])
    return cpu


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory_by_part() -> dict[str, float]:
    """Resident memory (MiB) now of the same parts as cpu_by_part: the trainers are the worker's
    live children, PostgreSQL counts its backends (their shared buffers once per process, so the
    sum overstates it)."""
    parts = _part_pids()
    stats = _all_stats()
    rss = {name: (_rss_mib(pid) if pid in stats else 0.0) for name, pid in parts.items()}
    rss["trainers"] = 0.0
    for pid, (parent, _, _) in stats.items():
        if parent == parts["worker"]:
            rss["trainers"] += _rss_mib(pid)
        elif parent == parts["postgres"]:
            rss["postgres"] += _rss_mib(pid)
    rss["bench clients"] = _rss_mib(os.getpid())
    return {k: round(v, 1) for k, v in rss.items()}


def database_rows_written() -> int | None:
    """Rows inserted, updated and deleted so far in the stack's database (pg_stat_database),
    asked with the psql of the PostgreSQL the stack runs; None when there is none."""
    psql = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    if not psql:
        return None
    out = subprocess.run(
        [
            str(psql[-1]),
            "-h",
            "127.0.0.1",
            "-p",
            os.environ.get("COTRAIN_PG_PORT", "5432"),
            "-U",
            "cotrain",
            "-d",
            "cotrain",
            "-tAc",
            "SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = 'cotrain'",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": "cotrain"},
    )
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


# --- clients ---------------------------------------------------------------------------------


class Follower:
    """One session's WebSocket: every progress with its latency; done once the session ended."""

    def __init__(self, session_id: str):
        self.session_id = session_id
        self.samples: list[tuple[float, float]] = []  # (at, latency s)
        self.steps: set[int] = set()
        self.status = None
        self.first_step = asyncio.get_running_loop().create_future()
        self.ended = asyncio.get_running_loop().create_future()


async def follow(ws_url: str, follower: Follower, stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token()}"}
    async with connect(ws_url, additional_headers=headers, open_timeout=60, max_queue=None) as ws:
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
            except TimeoutError:
                continue
            received = time.time()
            m = json.loads(raw)
            if m["type"] == "training.progress" and m.get("at"):
                follower.samples.append((epoch_of(m["at"]), received - epoch_of(m["at"])))
                follower.steps.add(m["step"])
                if not follower.first_step.done():
                    follower.first_step.set_result(received)
            elif m["type"] == "session.status":
                follower.status = m["status"]
                if m["status"] in FINAL and not follower.ended.done():
                    follower.ended.set_result(received)
                    return


async def follow_list(ws_url: str, samples: list, stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token()}"}
    async with connect(ws_url, additional_headers=headers, open_timeout=60, max_queue=None) as ws:
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
            except TimeoutError:
                continue
            received = time.time()
            m = json.loads(raw)
            if m["type"] == "training.progress" and m.get("at"):
                samples.append((epoch_of(m["at"]), received - epoch_of(m["at"])))


def stalled_client(api: str, path: str) -> socket.socket:
    """A WebSocket handshake, then nothing is ever read: a 4 KiB receive buffer fills at once and
    the server's sends to this client block."""
    url = urllib.parse.urlparse(api)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((url.hostname, url.port or 80))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token()}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            raise RuntimeError("the stalled client's handshake was refused")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"the stalled client's handshake failed: {head.splitlines()[0]!r}")
    return s


def unread_bytes(s: socket.socket) -> int:
    return struct.unpack("i", fcntl.ioctl(s, termios.FIONREAD, b"\0\0\0\0"))[0]


def server_send_queue(s: socket.socket) -> int | None:
    """Bytes the API's end of the stalled connection could not send yet (ss's Send-Q): above a
    few KiB, its sends to this client block."""
    port = s.getsockname()[1]
    out = subprocess.run(["ss", "-tnH", "state", "established"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()  # Recv-Q Send-Q Local Peer
        if len(fields) >= 4 and fields[3].endswith(f":{port}"):
            return int(fields[1])
    return None


def stored_steps(api: str, session_id: str) -> int:
    count, after = 0, -1
    while True:
        page = call(api, f"/api/sessions/{session_id}/metrics?afterStep={after}&limit=10000")["metrics"]
        count += len(page)
        if len(page) < 10000:
            return count
        after = page[-1]["step"]


# --- one scenario ----------------------------------------------------------------------------


def summarize(samples: list[tuple[float, float]], window: tuple[float, float]) -> dict:
    all_ms = [lat * 1000 for _, lat in samples]
    steady = [lat * 1000 for at, lat in samples if window[0] <= at <= window[1]]
    return {
        "messages": len(all_ms),
        "steady_messages": len(steady),
        "p50_ms": round(percentile(steady, 50), 1) if steady else None,
        "p99_ms": round(percentile(steady, 99), 1) if steady else None,
        "max_ms": round(max(steady), 1) if steady else None,
        "all_p50_ms": round(percentile(all_ms, 50), 1) if all_ms else None,
        "all_p99_ms": round(percentile(all_ms, 99), 1) if all_ms else None,
    }


async def scenario(api: str, n: int, rate: float, seconds: int, stalled: bool) -> dict:
    steps = int(rate * seconds)
    ws_base = api.replace("http", "ws", 1)
    stop = asyncio.Event()
    list_samples: list = []
    list_task = asyncio.create_task(follow_list(f"{ws_base}/ws/sessions", list_samples, stop))
    stall = await asyncio.to_thread(stalled_client, api, "/ws/sessions") if stalled else None
    load_before = os.getloadavg()

    async def start(i: int) -> tuple[Follower, asyncio.Task]:
        created = await asyncio.to_thread(
            call, api, "/api/sessions", request(f"relay {n}x{rate:g}/s #{i}", steps, rate), "POST"
        )
        f = Follower(created["id"])
        return f, asyncio.create_task(follow(f"{ws_base}/ws/sessions/{created['id']}", f, stop))

    began = time.time()
    limit = asyncio.Semaphore(8)

    async def limited(i):
        async with limit:
            return await start(i)

    started = await asyncio.gather(*(limited(i) for i in range(n)))
    followers = [f for f, _ in started]
    deadline = seconds + 300
    # The steady window opens when every session has emitted, and closes when the first one ends.
    await asyncio.wait_for(asyncio.gather(*(f.first_step for f in followers)), deadline)
    cpu_start, rows_start, window_start = cpu_by_part(), database_rows_written(), time.time()
    # Resident memory sampled every second through the window; each part's peak is reported.
    memory: dict[str, float] = {}

    async def sample_memory() -> None:
        while True:
            for part, mib in (await asyncio.to_thread(memory_by_part)).items():
                memory[part] = max(memory.get(part, 0.0), mib)
            await asyncio.sleep(1.0)

    memory.update(memory_by_part())
    sampler = asyncio.create_task(sample_memory())
    first_end = asyncio.wait([f.ended for f in followers], return_when=asyncio.FIRST_COMPLETED)
    await asyncio.wait_for(first_end, deadline)
    sampler.cancel()
    cpu_end, rows_end, window_end = cpu_by_part(), database_rows_written(), time.time()
    await asyncio.wait_for(asyncio.gather(*(f.ended for f in followers)), deadline)
    finished = time.time()
    stop.set()
    await asyncio.gather(*(t for _, t in started), list_task, return_exceptions=True)
    stalled_unread = unread_bytes(stall) if stall else None
    stalled_server_queue = server_send_queue(stall) if stall else None
    if stall:
        stall.close()

    window = (
        max(min(at for at, _ in f.samples) for f in followers),
        min(max(at for at, _ in f.samples) for f in followers),
    )
    if window[0] >= window[1]:
        raise SystemExit(
            f"{n} sessions never all emitted at once: the first ended before the last began, "
            f"{finished - began:.0f} s after the first create; give each a longer --seconds"
        )
    elapsed = window_end - window_start
    cpu = {part: round(100 * (cpu_end[part] - cpu_start.get(part, 0.0)) / elapsed, 1) for part in cpu_end}
    counts = {
        "emitted": n * steps,
        "stored": sum([await asyncio.to_thread(stored_steps, api, f.session_id) for f in followers]),
        "received": sum(len(f.steps) for f in followers),
        # Steps stored before a client subscribed reach it only as the snapshot's newest step;
        # steps a lagging client skipped were coalesced (it got a newer one instead).
        "before_subscribing": sum(min(f.steps) - 1 for f in followers if f.steps),
        "coalesced": sum(max(f.steps) - min(f.steps) + 1 - len(f.steps) for f in followers if f.steps),
    }
    result = {
        "sessions": n,
        "rate_per_session": rate,
        "stalled_client": "list channel" if stalled else None,
        "statuses": sorted({f.status for f in followers}),
        "session": summarize([s for f in followers for s in f.samples], window),
        "list_channel": summarize(list_samples, window),
        "steps": counts,
        "steady_window_s": round(window[1] - window[0], 1),
        "cpu_percent_in_steady_window": cpu,
        "peak_memory_mib_in_steady_window": memory,
        "database_rows_written_per_s": (
            None if rows_start is None or rows_end is None else round((rows_end - rows_start) / elapsed, 1)
        ),
        "load_average_before": [round(x, 2) for x in load_before],
        "wall_s": round(finished - began, 1),
    }
    if stall:
        result["stalled_client_unread_bytes"] = stalled_unread
        result["stalled_client_server_send_queue_bytes"] = stalled_server_queue
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8080")
    parser.add_argument("--sessions", default="1,10,100")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument(
        "--seconds", type=int, default=90, help="each session's length; longer than creating them all takes"
    )
    parser.add_argument("--no-stalled", action="store_true", help="skip the runs with a stalled client")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sessions.split(",")]
    hosts = [w for w in call(args.api, "/api/workers")["workers"] if w["alive"]]
    slots = sum(w["cpuSlots"] if not w["devices"] else len(w["devices"]) for w in hosts)
    if slots < max(sizes):
        raise SystemExit(
            f"the workers offer {slots} training slot(s); start the stack with "
            f"COTRAIN_TRAINING_SLOTS={max(sizes)}"
        )

    results = []
    for n in sizes:
        for stalled in (False,) if args.no_stalled else (False, True):
            r = asyncio.run(scenario(args.api, n, args.rate, args.seconds, stalled))
            results.append(r)
            s, lst, c = r["session"], r["list_channel"], r["steps"]
            print(
                f"{n:>4} sessions x {args.rate:g}/s{' + stalled' if stalled else '          '}: "
                f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms "
                f"(max {s['max_ms']}; whole run p99 {s['all_p99_ms']}); "
                f"list channel p50 {lst['p50_ms']} p99 {lst['p99_ms']} ms; "
                f"steps emitted {c['emitted']} stored {c['stored']} received {c['received']} "
                f"(before subscribing {c['before_subscribing']}, coalesced {c['coalesced']}); "
                f"CPU % {r['cpu_percent_in_steady_window']}; "
                f"peak MiB {r['peak_memory_mib_in_steady_window']}; "
                f"database rows written/s {r['database_rows_written_per_s']}",
                flush=True,
            )
    command = f"bench/relay.py --sessions {args.sessions} --rate {args.rate:g} --seconds {args.seconds}" + (
        " --no-stalled" if args.no_stalled else ""
    )
    figures = {
        "where": "one machine runs the API, the worker and its trainers, PostgreSQL, Temporal "
        "and these clients",
        "aim": "p99 under 100 ms at 100 sessions",
        "p99_ms_by_scenario": {
            f"{r['sessions']}{' + stalled' if r['stalled_client'] else ''}": r["session"]["p99_ms"]
            for r in results
        },
    }
    write_results("relay", len(results), figures, results, command)
    print(f"machine: {machine()}; written to bench/results/relay.json")
    print(
        "\n| sessions | stalled client | p50 ms | p99 ms | list channel p50 / p99 ms "
        "| emitted / stored / received |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        s, lst, c = r["session"], r["list_channel"], r["steps"]
        print(
            f"| {r['sessions']} | {'yes' if r['stalled_client'] else 'no'} | {s['p50_ms']} | {s['p99_ms']} | "
            f"{lst['p50_ms']} / {lst['p99_ms']} | {c['emitted']} / {c['stored']} / {c['received']} |"
        )


if __name__ == "__main__":
    main()
