"""Process launching for multi-process training.

`python -m cotrain_core.train` with distributed.nodes x gpus_per_node > 1 becomes a launcher: it
starts gpus_per_node workers (`python -m cotrain_core.train` again, with RANK / LOCAL_RANK /
WORLD_SIZE / MASTER_ADDR / MASTER_PORT in their environment), forwards global rank 0's event
stream (and, on every node, its first rank's `system` samples) to its own stdout, and supervises
them:

- a worker that exits non-zero (other than 4) or dies by a signal makes the launcher kill the
  remaining workers, emit one `error` event (the worker's own, or one naming the rank) and exit
  with that worker's code (2 config, 3 data; a signal death or anything else -> 1);
- SIGTERM/SIGINT are forwarded to every worker; they agree on a step, checkpoint and exit 4;
- every worker watches its parent (the launcher), so killing the launcher stops them.

Under torchrun (RANK and WORLD_SIZE already set) there is no launcher: the process is one rank.
Nodes > 1 join through MASTER_ADDR / MASTER_PORT / NODE_RANK (one launcher per node).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from .config import ConfigError

WORKER_ENV = "COTRAIN_WORKER"


@dataclass
class RankEnv:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int


def worker_env() -> RankEnv | None:
    """This process's rank when started by the launcher or torchrun, else None."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    world = int(os.environ["WORLD_SIZE"])
    return RankEnv(
        rank=int(os.environ["RANK"]),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", world)),
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_env(nodes: int) -> tuple[str, int, int]:
    """(MASTER_ADDR, MASTER_PORT, NODE_RANK) for this node; ConfigError naming distributed.nodes."""
    if nodes == 1:
        return (
            os.environ.get("MASTER_ADDR", "127.0.0.1"),
            int(os.environ.get("MASTER_PORT") or free_port()),
            0,
        )
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK") if not os.environ.get(k)]
    if missing:
        raise ConfigError(
            f"distributed.nodes: {nodes} nodes need {', '.join(missing)} in the environment of every "
            "node's trainer (MASTER_ADDR/MASTER_PORT of node 0, NODE_RANK 0.."
            f"{nodes - 1}); or start one rank per GPU with torchrun"
        )
    node_rank = int(os.environ["NODE_RANK"])
    if not 0 <= node_rank < nodes:
        raise ConfigError(f"distributed.nodes: NODE_RANK={node_rank} is outside 0..{nodes - 1}")
    return os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), node_rank


def launch(argv: list[str], nodes: int, per_node: int, out, stop: threading.Event) -> int:
    """Run per_node workers of this node and supervise them; returns the exit code."""
    addr, port, node_rank = node_env(nodes)
    world = nodes * per_node
    procs: list[subprocess.Popen] = []
    errors: dict[int, dict] = {}
    lock = threading.Lock()
    for local in range(per_node):
        rank = node_rank * per_node + local
        env = dict(os.environ)
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(local),
            WORLD_SIZE=str(world),
            LOCAL_WORLD_SIZE=str(per_node),
            NODE_RANK=str(node_rank),
            MASTER_ADDR=addr,
            MASTER_PORT=str(port),
            **{WORKER_ENV: "1", "COTRAIN_PARENT_PID": str(os.getpid())},
        )
        cmd = [sys.executable, "-m", "cotrain_core.train", *argv]
        procs.append(
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, text=True, bufsize=1, preexec_fn=_die_with_parent
            )
        )

    def pump(rank: int, proc: subprocess.Popen):
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                sys.stderr.write(f"[rank {rank}] {line}")
                continue
            if event.get("event") == "error":
                with lock:
                    errors.setdefault(rank, event)
            # Global rank 0 speaks for the run; this node's first rank adds its machine samples.
            if rank == 0 or (rank == node_rank * per_node and event.get("event") == "system"):
                out.emit(**{k: v for k, v in event.items() if k != "v"})

    readers = []
    for local, proc in enumerate(procs):
        t = threading.Thread(target=pump, args=(node_rank * per_node + local, proc), daemon=True)
        t.start()
        readers.append(t)

    forwarded = False
    failures: list[int] = []  # ranks that failed by themselves, in the order seen
    killed: set[int] = set()  # ranks this launcher killed after the first failure
    codes: dict[int, int] = {}
    while len(codes) < len(procs):
        if stop.is_set() and not forwarded:
            forwarded = True
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
        for local, proc in enumerate(procs):
            rank = node_rank * per_node + local
            if rank in codes or proc.poll() is None:
                continue
            codes[rank] = proc.returncode
            if proc.returncode not in (0, 4) and rank not in killed:
                failures.append(rank)
                if len(failures) == 1:
                    killed = {node_rank * per_node + i for i in _kill_all(procs)}
        time.sleep(0.05)
    for t in readers:
        t.join(timeout=5)

    if not failures:
        return 4 if any(c == 4 for c in codes.values()) else 0
    # A rank whose collective lost its peer only reports the failure of the rank that died.
    rank = next((r for r in failures if errors.get(r, {}).get("kind") != "peer"), failures[0])
    code = codes[rank]
    event = errors.get(rank)
    if event is not None:
        if rank != 0:  # rank 0 speaks for the run: its error event was forwarded already
            out.error(event["kind"], f"rank {rank}: {event['message']}", event["retryable"])
        return code if code > 0 else 1
    if code < 0:
        why = f"was killed by {signal.Signals(-code).name}"
    else:
        why = f"exited with code {code} without an error event"
    out.error(
        "runtime",
        f"rank {rank} (pid {procs[rank - node_rank * per_node].pid}) {why}; stopped the other ranks",
        retryable=True,
    )
    return code if code > 0 and code not in (2, 3, 4) else 1


def _die_with_parent() -> None:
    """In the forked worker (Linux): the kernel sends SIGKILL when the launcher dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the worker's parent watchdog still stops it


def _kill_all(procs) -> list[int]:
    """SIGKILL the others: a peer of a dead rank may be blocked in a collective (checkpoints are atomic).
    Returns the local ranks it killed."""
    killed = [i for i, p in enumerate(procs) if p.poll() is None]
    for i in killed:
        procs[i].kill()
    return killed
