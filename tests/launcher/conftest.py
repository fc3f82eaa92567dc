"""What the launcher tests share: one `./cotrain up --detach` stack for the whole run, on private
ports and a private storage root (starting it costs 10-20 s on a 2-core machine)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COTRAIN = ROOT / "cotrain"
PARTS = ("postgres", "temporal", "api", "worker")
STATUS_LINE = re.compile(r"^\s+(\S+)\s+(healthy|running|DOWN)\b\s*(.*)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_state(pid: int) -> str | None:
    """The state letter of a process (Z for a zombie), or None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def wait_until(what: str, seconds: float, check, every: float = 0.25, explain=lambda: ""):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds}s\n{explain()}")
        time.sleep(every)


class Stack:
    def __init__(self, storage: Path):
        self.storage = storage
        self.run_dir = storage / "services" / "run"
        self.log_dir = storage / "logs" / "system"
        self.env = {
            **os.environ,
            "COTRAIN_STORAGE_ROOT": str(storage),
            "COTRAIN_API_PORT": str(free_port()),
            "COTRAIN_PG_PORT": str(free_port()),
            "COTRAIN_TEMPORAL_PORT": str(free_port()),
            "COTRAIN_UI_PORT": str(free_port()),
        }
        self.pids_seen: set[int] = set()

    def cotrain(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(COTRAIN), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def status(self) -> dict[str, tuple[str, str]]:
        """{part: (healthy|running|DOWN, the rest of its line)} from ./cotrain status."""
        out = self.cotrain("status", timeout=30).stdout
        lines = (STATUS_LINE.match(line) for line in out.splitlines())
        return {m[1]: (m[2], m[3]) for m in lines if m}

    def pid(self, part: str) -> int:
        if part == "postgres":
            pid_file = self.storage / "services" / "postgres" / "postmaster.pid"
        else:
            pid_file = self.run_dir / f"{part}.pid"
        pid = int(pid_file.read_text().split()[0])
        self.pids_seen.add(pid)
        return pid

    def supervisor_log(self) -> str:
        return (self.log_dir / "supervisor.log").read_text()

    def explain(self) -> str:
        tail = "\n".join(self.supervisor_log().splitlines()[-15:])
        return f"{self.cotrain('status', timeout=30).stdout}\nsupervisor.log:\n{tail}"

    def processes(self) -> list[int]:
        """Live (not zombie) processes that belong to this stack: its storage root is in their
        command line or environment."""
        mark = str(self.storage).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            except OSError:
                continue
            if mark in text and proc_state(int(entry.name)) not in (None, "Z"):
                found.append(int(entry.name))
        return found


@pytest.fixture(scope="session")
def stack():
    # Under /tmp, which the postgres system user can reach when the tests run as root.
    storage = Path(tempfile.mkdtemp(prefix="cotrain-launcher-test.", dir="/tmp"))
    storage.chmod(0o755)
    s = Stack(storage)
    try:
        up = s.cotrain("up", "--detach", timeout=420)
        assert up.returncode == 0, up.stdout + up.stderr
        yield s
    finally:
        s.cotrain("down", timeout=180)
        for pid in s.processes():  # only when a test failed half-way
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(storage, ignore_errors=True)
