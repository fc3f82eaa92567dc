"""The cluster deployment, under Docker, end to end (`./cotrain cluster test`).

scripts/cluster.sh builds the images, starts docker-compose.yml with docker-compose.loopback.yml
(PostgreSQL, the Temporal server on it, the UI, the API, worker hosts loopback-a and loopback-b,
all on the host's loopback) and passes the API's address and admin token. The tests share that
one cluster and run in file order; each leaves both workers running. Every wait polls the API
against a deadline.
"""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

API = os.environ.get("COTRAIN_CLUSTER_API", "http://127.0.0.1:18080")
TOKEN = os.environ.get("COTRAIN_CLUSTER_TOKEN", "")
PROJECT = "cotrain"
HOSTS = ("loopback-a", "loopback-b")
FINAL = {"COMPLETED", "FAILED", "CANCELLED"}

pytestmark = pytest.mark.skipif(not TOKEN, reason="needs a running cluster: ./cotrain cluster test")


def call(method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        API + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def get(path: str) -> dict:
    return call("GET", path)


def wait_until(what: str, seconds: float, check, every: float = 0.5):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            last = e  # the API may be briefly unreachable while a part restarts
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {seconds} s (last: {last})")


def session(name: str, steps: int, nodes: int = 1, checkpoint: int = 10, seq: int = 64) -> dict:
    return {
        "name": name,
        "description": "cluster test",
        "modelConfig": {"type": "llama2", "size": "debug", "precision": "fp32"},
        "trainingConfig": {
            "batchSize": 4,
            "learningRate": 0.003,
            "epochs": 1,
            "optimizer": "adamw",
            "maxSteps": steps,
        },
        "distributedConfig": {"nodes": nodes, "gpusPerNode": 1, "strategy": "ddp"},
        "dataConfig": {"seqLength": seq},
        "checkpointConfig": {"interval": checkpoint},
    }


def create(body: dict) -> str:
    return call("POST", "/api/sessions", body)["id"]


def finished(sid: str, seconds: float = 600) -> dict:
    def ended():
        s = get(f"/api/sessions/{sid}")
        return s if s["status"] in FINAL else None

    return wait_until(f"session {sid} ends", seconds, ended)


def at_step(sid: str, step: int) -> None:
    def reached():
        return (get(f"/api/sessions/{sid}").get("latestStep") or 0) >= step

    wait_until(f"session {sid} at step {step}", 300, reached)


def events(sid: str) -> list[dict]:
    return get(f"/api/sessions/{sid}/events")["events"]


def steps_stored(sid: str) -> list[int]:
    return [m["step"] for m in get(f"/api/sessions/{sid}/metrics")["metrics"]]


def placed_on(sid: str) -> list[str]:
    """The hosts of each attempt, in order, from the trainer_launched events."""
    return [
        e["message"].split(" on ", 1)[1]
        for e in events(sid)
        if e["cause"] == "trainer_launched" and " on " in (e["message"] or "")
    ]


def container(host: str) -> str:
    return f"{PROJECT}-worker-{host.rsplit('-', 1)[1]}-1"


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, capture_output=True, timeout=180)


def alive_hosts() -> set[str]:
    return {w["id"] for w in get("/api/workers")["workers"] if w["alive"]}


def both_workers_back() -> None:
    for host in HOSTS:
        docker("start", container(host))
    wait_until("both worker hosts alive", 180, lambda: alive_hosts() >= set(HOSTS))


def test_the_tiny_session_completes_through_the_cluster():
    assert alive_hosts() >= set(HOSTS)
    sid = create(session("cluster-tiny", 30))
    done = finished(sid)
    assert done["status"] == "COMPLETED", done
    assert steps_stored(sid) == list(range(1, 31))
    assert done["finalModelPath"]


def test_a_two_node_session_runs_on_both_worker_containers():
    sid = create(session("cluster-gang", 30, nodes=2))
    done = finished(sid)
    assert done["status"] == "COMPLETED", done
    (first, *_) = placed_on(sid)
    assert first.startswith("2 nodes: ") and all(h in first for h in HOSTS), first
    assert steps_stored(sid) == list(range(1, 31))


def test_docker_kill_of_a_worker_container_and_the_session_completes_on_the_other():
    sid = create(session("cluster-kill", 400, seq=128))
    at_step(sid, 25)
    (host,) = [h for h in HOSTS if placed_on(sid)[0].startswith(h)]
    docker("kill", container(host))
    done = finished(sid)
    assert done["status"] == "COMPLETED", done
    resumed = [e for e in events(sid) if e["cause"] == "trainer_started"][-1]
    assert resumed["message"].startswith("resumed from step"), resumed
    assert not placed_on(sid)[-1].startswith(host), placed_on(sid)
    assert steps_stored(sid) == list(range(1, 401))  # every step once: none lost, none twice
    both_workers_back()


def test_docker_stop_of_a_worker_drains_it_and_the_session_goes_on_elsewhere():
    sid = create(session("cluster-drain", 400, seq=128))
    at_step(sid, 25)
    (host,) = [h for h in HOSTS if placed_on(sid)[0].startswith(h)]
    docker("stop", container(host))
    # The worker drained within the stop grace (no SIGKILL): its trainer checkpointed on SIGTERM
    # and the session went back to the queue at once.
    state = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.ExitCode}}", container(host)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert state != "137", "the worker was killed at the end of its stop grace"
    done = finished(sid)
    assert done["status"] == "COMPLETED", done
    assert not placed_on(sid)[-1].startswith(host), placed_on(sid)
    retries = [e["message"] for e in events(sid) if e["cause"] == "retry"]
    assert len(retries) == 1 and "stopped by a signal after writing a checkpoint" in retries[0], retries
    assert steps_stored(sid) == list(range(1, 401))
    both_workers_back()


def test_a_restart_of_the_temporal_server_container_loses_nothing():
    sid = create(session("cluster-temporal", 300, seq=128))
    at_step(sid, 25)
    docker("restart", f"{PROJECT}-temporal-1")
    done = finished(sid)
    assert done["status"] == "COMPLETED", done
    assert steps_stored(sid) == list(range(1, 301))
    assert [e["cause"] for e in events(sid)].count("completed") == 1
