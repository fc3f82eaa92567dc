"""The launcher keeps a one-machine stack alive without a person.

`./cotrain up --detach` on private ports and a private storage root leaves a supervisor; a SIGKILLed
worker and API are reported DOWN at once (a zombie or a dead pid never counts as running) and come
back healthy under new pids by themselves; `up` again starts no second supervisor; `down` leaves no
process behind. The stack is conftest.py's, shared with the chaos run (test_chaos.py runs first);
every wait polls against a deadline.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import COTRAIN, PARTS, STATUS_LINE, Stack, free_port, proc_state, start_time, wait_until


def kill_and_recover(stack: Stack, part: str, seconds: float) -> float:
    """SIGKILLs a part; it is DOWN at once and healthy again under a new pid. Returns the time."""
    assert stack.status()[part][0] == "healthy"
    old = stack.pid(part)
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    wait_until(f"the {part} dies", 5, lambda: proc_state(old) in (None, "Z"), every=0.01)
    # Reaped, a zombie, or already started again but not ready: in no case healthy.
    assert stack.status()[part][0] == "DOWN"

    def recovered():
        state = stack.status()[part][0]
        return state == "healthy" and stack.pid(part) != old

    wait_until(f"a new {part} is healthy", seconds, recovered, every=0.5, explain=stack.explain)
    took = time.monotonic() - killed
    print(f"{part}: healthy again {took:.1f}s after SIGKILL")
    # The supervisor is its parent and reaped it: no zombie is left behind.
    wait_until(f"the killed {part} is reaped", 5, lambda: proc_state(old) is None)
    assert f"{part} is down: pid {old} was killed by SIGKILL" in stack.supervisor_log()
    return took


def test_a_zombie_or_a_reused_pid_is_not_a_running_part(tmp_path):
    """Without a stack: a fake worker whose pid file and log say ready."""
    env = {
        **os.environ,
        "COTRAIN_STORAGE_ROOT": str(tmp_path),
        "COTRAIN_API_PORT": str(free_port()),
        "COTRAIN_PG_PORT": str(free_port()),
        "COTRAIN_TEMPORAL_PORT": str(free_port()),
    }
    run_dir, log_dir = tmp_path / "services" / "run", tmp_path / "logs" / "system"
    run_dir.mkdir(parents=True)
    log_dir.mkdir(parents=True)
    (log_dir / "worker.log").write_text("Cotrain worker ready\n")
    (run_dir / "worker.offset").write_text("0\n")

    def worker_line():
        out = subprocess.run([str(COTRAIN), "status"], env=env, capture_output=True, text=True).stdout
        return next(m for m in map(STATUS_LINE.match, out.splitlines()) if m and m[1] == "worker")

    # A child of this process: it stays a zombie after its death until we reap it.
    fake = subprocess.Popen(["sleep", "60"])
    try:
        (run_dir / "worker.pid").write_text(f"{fake.pid} {start_time(fake.pid)}\n")
        assert worker_line()[2] == "healthy"

        (run_dir / "worker.pid").write_text(f"{fake.pid} {int(start_time(fake.pid)) + 1}\n")
        line = worker_line()
        assert line[2] == "DOWN" and "belongs to another process" in line[3]

        (run_dir / "worker.pid").write_text(f"{fake.pid} {start_time(fake.pid)}\n")
        os.kill(fake.pid, signal.SIGKILL)
        wait_until("the fake worker is a zombie", 5, lambda: proc_state(fake.pid) == "Z")
        line = worker_line()
        assert line[2] == "DOWN" and "zombie" in line[3]
    finally:
        fake.kill()
        fake.wait()


def test_a_killed_worker_comes_back(stack):
    kill_and_recover(stack, "worker", 30)


def test_a_killed_api_comes_back(stack):
    kill_and_recover(stack, "api", 60)


def test_up_again_starts_no_second_supervisor(stack):
    supervisor = stack.pid("supervisor")
    up = stack.cotrain("up", "--detach")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "already keeps Cotrain running" in up.stderr
    assert stack.pid("supervisor") == supervisor
    supervisors = [
        pid for pid in stack.processes() if b"supervise" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert supervisors == [supervisor]


def test_down_leaves_no_process(stack):
    for part in PARTS:
        stack.pid(part)
    down = stack.cotrain("down", timeout=180)
    assert down.returncode == 0, down.stderr
    assert all(state == "DOWN" for state, _ in stack.status().values())
    wait_until("no process of the stack is left", 10, lambda: not stack.processes())
    # Each pid ever seen is gone, or a zombie that PID 1 has yet to reap (no longer ours to reap:
    # down stops the supervisor first).
    assert all(proc_state(pid) in (None, "Z") for pid in stack.pids_seen)
