"""A stand-in for the real trainer in the worker's unit tests: speaks the event protocol.

What it does is chosen by the config's run.name: "ok", "config-error", "diverged", "crash",
"preempt" (exits 4 after a checkpoint, as on a SIGTERM from outside), "slow" (steps until
SIGTERM, then writes a checkpoint and exits 4, as the real trainer does) and "node" (a node other
than 0 of a multi-node session: one machine sample, then exit 0 without a done event).
"""

import json
import os
import pathlib
import signal
import sys
import time
import tomllib

args = sys.argv[1:]
config = tomllib.loads(pathlib.Path(args[args.index("--config") + 1]).read_text())
mode = config["run"]["name"]
checkpoints = pathlib.Path(config["checkpoint"]["output_path"])
checkpoints.mkdir(parents=True, exist_ok=True)
(checkpoints / "argv.json").write_text(json.dumps(args))
(checkpoints / "devices.txt").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)"))
(checkpoints / "rendezvous.txt").write_text(
    " ".join(os.environ.get(k, "(unset)") for k in ("NODE_RANK", "MASTER_ADDR", "MASTER_PORT"))
)


def emit(**event):
    print(json.dumps({"v": 1, **event}), flush=True)


print("a plain line the worker keeps as a log line", flush=True)
if mode == "node":
    emit(
        event="system",
        cpu_percent=50.0,
        rss_bytes=1,
        disk_read_bytes=2,
        disk_write_bytes=3,
        net_sent_bytes=4,
        net_recv_bytes=5,
        gpus=[],
    )
    sys.exit(0)
emit(event="start", session_id=config["run"]["session_id"], total_steps=3, world_size=2)
if mode == "config-error":
    emit(event="error", kind="config", message="model.size: 7B is too big", retryable=False)
    sys.exit(2)
if mode == "slow":
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    step = 0
    while not stop:
        step += 1
        emit(
            event="step",
            step=step,
            total_steps=1000,
            epoch=1,
            progress=step / 1000,
            loss=1.0,
            accuracy=None,
            lr=0.001,
            grad_norm=1.0,
            batch_size=8,
            tokens_per_s=100.0,
        )
        time.sleep(0.05)
    (checkpoints / f"step-{step}").mkdir(exist_ok=True)
    emit(event="checkpoint", step=step, path=str(checkpoints / f"step-{step}"), bytes=1)
    sys.exit(4)
for step in (1, 2, 3):
    emit(
        event="step",
        step=step,
        total_steps=3,
        epoch=1,
        progress=step / 3,
        loss=3.0 / step,
        accuracy=0.1 * step,
        lr=0.001,
        grad_norm=1.0,
        batch_size=8,
        tokens_per_s=100.0,
    )
    if step == 2:
        (checkpoints / "step-2").mkdir(exist_ok=True)
        emit(event="checkpoint", step=2, path=str(checkpoints / "step-2"), bytes=1234)
        # Heartbeats are throttled (0.8 x the test's 500 ms timeout): leave the worker several
        # intervals to send one that carries this checkpoint.
        time.sleep(1.5)
if mode == "diverged":
    emit(event="error", kind="runtime", message="loss is nan at step 3", retryable=False)
    sys.exit(1)
if mode == "preempt":
    sys.exit(4)
if mode == "crash":
    print("RuntimeError: the GPU fell off the bus", file=sys.stderr, flush=True)
    sys.exit(1)
emit(event="done", step=3, loss=1.0, final_path=config["run"]["final_path"], eval_loss=1.1)
