"""What the benchmarks share: REST calls, a WebSocket listener with receive times, the machine."""

import json
import os
import platform
import queue
import threading
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent


def token() -> str:
    """COTRAIN_TOKEN, else the admin token the API's first start wrote under the storage root."""
    if os.environ.get("COTRAIN_TOKEN"):
        return os.environ["COTRAIN_TOKEN"].strip()
    storage = Path(os.environ.get("COTRAIN_STORAGE_ROOT", ROOT / "var/cotrain"))
    return (storage / "admin-token").read_text().strip()


def call(api: str, path: str, body: dict | None = None, method: str = "GET") -> dict:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token()}"}
    if data:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(api + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def resumable_request(name: str, description: str) -> dict:
    """A debug-size session that trains far longer than any fault bench waits (10,000 steps) and
    checkpoints every 25 steps: what the recovery and failover benches kill and watch resume."""
    return {
        "name": name,
        "description": description,
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


def listen(ws_url: str, inbox: queue.Queue, stop: threading.Event, reconnect: bool) -> None:
    """Puts (monotonic receive time, message) for every frame of the session into inbox. With
    reconnect, a lost connection (the API restarting) is opened again, asking for the steps after
    the newest one seen, as a client that must not miss any would."""
    newest = None
    while not stop.is_set():
        url = ws_url if newest is None else f"{ws_url}?afterStep={newest}"
        headers = {"Authorization": f"Bearer {token()}"}
        try:
            with connect(url, open_timeout=5, additional_headers=headers) as ws:
                while not stop.is_set():
                    try:
                        raw = ws.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    message = json.loads(raw)
                    if message.get("type") == "training.progress":
                        newest = max(newest or 0, message["step"])
                    inbox.put((time.monotonic(), message))
        except Exception:
            if not reconnect:
                raise
            time.sleep(0.2)


def subscribe(api: str, session_id: str, reconnect: bool = False) -> tuple[queue.Queue, threading.Event]:
    """Follows the session's WebSocket in a thread; set the event to stop it."""
    inbox: queue.Queue = queue.Queue()
    stop = threading.Event()
    ws_url = api.replace("http", "ws", 1) + f"/ws/sessions/{session_id}"
    threading.Thread(target=listen, args=(ws_url, inbox, stop, reconnect), daemon=True).start()
    return inbox, stop


def next_message(inbox: queue.Queue, deadline: float) -> tuple[float, dict]:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no progress in time")
    return inbox.get(timeout=left)


def machine() -> str:
    mem_kib = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
    return (
        f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, {mem_kib / 2**20:.0f} GiB, "
        f"{platform.platform()}"
    )


def write_results(
    name: str, trials: int, medians: dict, results: list[dict], command: str | None = None
) -> dict:
    """Writes bench/results/<name>.json: the command (by default bench/<name>.py --trials N), the
    machine, the medians (or other summary figures), every trial."""
    summary = {
        "command": command or f"bench/{name}.py --trials {trials}",
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        **medians,
        "trials": results,
    }
    out = ROOT / f"bench/results/{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
