"""The load-generating trainer mode: the trainer's events at a fixed rate, with no model at all.

    python -m cotrain_core.train --config run.toml     # with [load] events_per_second > 0
    python -m cotrain_core.load --config run.toml      # the same, directly

A config with `[load] events_per_second = R` (docs/config.md) is validated like any other, then,
instead of training, this emits `start`, one `step` every 1/R s for `train.max_steps` steps
(synthetic losses), a `checkpoint` every `checkpoint.interval` steps (a directory holding only its
manifest, which a resumed run continues from), and `done`. It never imports torch, so a hundred of
them fit on a small machine: the orchestrator (worker, PostgreSQL, relay, WebSocket clients) is
loaded exactly as by real training (bench/relay.py). SIGTERM, the parent watchdog and the exit
codes are the trainer's (docs/protocol.md).
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
import tomllib
from pathlib import Path

from .config import Config, ConfigError, load_config
from .events import Emitter

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG, EXIT_STOPPED = 0, 1, 2, 4
_STEP_DIR = re.compile(r"step-(\d+)")


def wanted(argv: list[str]) -> bool:
    """Whether these trainer arguments ask for the load generator: a config whose [load] table
    sets a rate, and no --dry-run (a dry run prints the plan training would follow). Anything
    unreadable is left to the trainer, which reports it."""
    if "--dry-run" in argv:
        return False
    try:
        path = argv[argv.index("--config") + 1]
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, IndexError, OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    load = raw.get("load")
    return isinstance(load, dict) and load.get("events_per_second", 0) != 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(f"arguments: {message}")


def _parse_args(argv):
    p = _Parser(prog="python -m cotrain_core.load", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="TOML run config with [load] (see docs/config.md)")
    p.add_argument("--resume", help="checkpoint directory (<output_path>/step-<n>) to continue from")
    return p.parse_args(argv)


def _watch_parent(parent: int) -> None:
    def loop():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                sys.stderr.write(f"cotrain-core: parent process {parent} exited; stopping\n")
                os._exit(EXIT_RUNTIME)

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def _latest_step(output_path: Path) -> int | None:
    """The newest step-<n> directory with its manifest (written last, so the step is complete)."""
    steps = []
    for d in output_path.glob("step-*"):
        m = _STEP_DIR.fullmatch(d.name)
        if m and (d / "manifest.json").is_file():
            steps.append(int(m.group(1)))
    return max(steps, default=None)


def _resume_step(cfg: Config, resume: str | None) -> int | None:
    if resume is None:
        return _latest_step(Path(cfg.checkpoint.output_path))
    try:
        manifest = json.loads((Path(resume) / "manifest.json").read_text())
        return int(manifest["step"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"--resume: {resume} is not a load-mode checkpoint: {e}") from None


def _checkpoint(cfg: Config, step: int) -> tuple[Path, int]:
    """step-<n>/manifest.json, renamed into place; the newest keep_last are kept."""
    out = Path(cfg.checkpoint.output_path)
    final = out / f"step-{step}"
    tmp = out / f"step-{step}.tmp-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    manifest = json.dumps({"format": 1, "step": step, "world_size": 1, "files": {}, "load": True})
    (tmp / "manifest.json").write_text(manifest)
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    kept = sorted((int(m.group(1)), d) for d in out.glob("step-*") if (m := _STEP_DIR.fullmatch(d.name)))
    for _, old in kept[: -cfg.checkpoint.keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final, len(manifest)


def _loss(step: int, total: int) -> float:
    """A plausible falling curve, so charts and comparisons look like training."""
    return round(0.5 + 5.0 * math.exp(-4.0 * step / total), 6)


def run(cfg: Config, out: Emitter, stop: threading.Event, resume: str | None) -> int:
    t, rate, total = cfg.train, cfg.load.events_per_second, cfg.train.max_steps
    resumed = _resume_step(cfg, resume)
    first = (resumed or 0) + 1
    model = {"type": cfg.model.type, "size": cfg.model.size, "precision": cfg.model.precision}
    out.emit(
        "start",
        session_id=cfg.run.session_id,
        total_steps=total,
        parameters=0,
        world_size=cfg.world_size,
        model=model,
        resumed_from=resumed,
        strategy=cfg.distributed.strategy,
        load={"events_per_second": rate},
    )
    tokens_per_s = t.batch_size * cfg.data.seq_length * rate
    begin = time.monotonic()
    step = first - 1
    for step in range(first, total + 1):
        # An absolute schedule: a late wake-up does not shift the steps after it.
        delay = begin + (step - first + 1) / rate - time.monotonic()
        if delay > 0 and stop.wait(delay):
            step -= 1
            break
        out.emit(
            "step",
            step=step,
            total_steps=total,
            epoch=1,
            progress=step / total,
            loss=_loss(step, total),
            accuracy=round(min(1.0, step / total), 6),
            lr=t.learning_rate,
            grad_norm=1.0,
            batch_size=t.batch_size,
            tokens_per_s=tokens_per_s,
            samples_per_s=t.batch_size * rate,
        )
        interval = cfg.checkpoint.interval
        if interval and step % interval == 0 and step < total:
            path, size = _checkpoint(cfg, step)
            out.emit("checkpoint", step=step, path=str(path), bytes=size, eval_loss=None)
        if stop.is_set():
            break
    if step < total:
        if step >= first:
            path, size = _checkpoint(cfg, step)
            out.emit("checkpoint", step=step, path=str(path), bytes=size, eval_loss=None)
        out.log(f"stopped by a signal after step {step}", level="warning")
        return EXIT_STOPPED
    final = Path(cfg.run.final_path)
    final.mkdir(parents=True, exist_ok=True)
    (final / "load.json").write_text(json.dumps({"load": True, "steps": total, "model": model}) + "\n")
    last = _loss(total, total)
    files = [{"name": f.name, "bytes": f.stat().st_size} for f in sorted(final.iterdir()) if f.is_file()]
    # No model and no data: nothing for the registry (the worker registers no load session).
    out.emit(
        "done",
        step=total,
        loss=last,
        final_path=str(final.resolve()),
        eval_loss=last,
        parameters=None,
        data_fingerprint=None,
        validation_path=None,
        files=files,
        bytes=sum(f["bytes"] for f in files),
    )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parent = int(os.environ.get("COTRAIN_PARENT_PID") or os.getppid())
    argv = sys.argv[1:] if argv is None else argv
    out = Emitter.take_stdout()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    _watch_parent(parent)
    try:
        args = _parse_args(argv)
        cfg = load_config(args.config)
        if cfg.load.events_per_second == 0:
            raise ConfigError("load.events_per_second: must be > 0 to generate load (0 trains)")
        return run(cfg, out, stop, args.resume)
    except ConfigError as e:
        out.error("config", str(e), retryable=False)
        return EXIT_CONFIG
    except Exception as e:
        out.error("runtime", f"{type(e).__name__}: {e}", retryable=True)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
