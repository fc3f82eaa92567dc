"""Cotrain trainer entry point (single process).

    python -m cotrain_core.train --config run.toml [--resume CHECKPOINT_DIR]

stdout carries only JSON-lines events (docs/protocol.md); human-readable logs go to stderr.
Exit codes: 0 done, 2 config error, 3 data error, 4 stopped by SIGTERM/SIGINT after writing a
checkpoint, 1 unexpected runtime error.
Without --resume the newest valid checkpoint in checkpoint.output_path is resumed automatically.
"""

import argparse
import contextlib
import json
import math
import os
import random
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from . import models
from .config import Config, ConfigError, load_config
from .data import TOKENIZER_INFO, DataError, Splits, encode, epoch_order, load_text, split_tokens, windows
from .events import Emitter

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG, EXIT_DATA, EXIT_STOPPED = 0, 1, 2, 3, 4
GRAD_CLIP = 1.0
EVAL_MAX_WINDOWS = 512  # evaluation uses at most the first 512 validation windows


class Diverged(Exception):
    """The loss became NaN/inf; retrying the same config would diverge again."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(f"arguments: {message}")


def _parse_args(argv):
    p = _Parser(prog="python -m cotrain_core.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="TOML run config (see docs/config.md)")
    p.add_argument("--resume", help="checkpoint directory (<output_path>/step-<n>) to resume from")
    return p.parse_args(argv)


def watch_parent(poll_s: float = 1.0) -> None:
    """Exit promptly if our parent process dies, so no orphaned trainer keeps running."""
    parent = os.getppid()

    def loop():
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                sys.stderr.write(f"cotrain-core: parent process {parent} exited; stopping\n")
                sys.stderr.flush()
                os._exit(EXIT_RUNTIME)

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def available_memory_bytes() -> int | None:
    try:
        import psutil

        return psutil.virtual_memory().available
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_resources(cfg: Config):
    """Config checks that need the machine: precision support and memory. Returns the torch device."""
    import torch

    cuda = torch.cuda.is_available()
    if cfg.model.precision == "fp16" and not cuda:
        raise ConfigError("model.precision: fp16 needs a CUDA GPU (use bf16 or fp32 on CPU)")
    device = torch.device("cuda" if cuda else "cpu")
    params = models.param_count(cfg.model.type, cfg.model.size)
    need = models.training_bytes(params, cfg.train.optimizer)
    if cuda:
        have, where = torch.cuda.mem_get_info()[0], "free GPU memory"
    else:
        have, where = available_memory_bytes(), "available RAM"
    if have is not None and need > have:
        raise ConfigError(
            f"model.size: {cfg.model.size} needs about {need / 2**30:.1f} GiB for weights, gradients and "
            f"{cfg.train.optimizer} state ({params / 1e9:.2f}B parameters); only {have / 2**30:.1f} GiB "
            f"{where}"
        )
    return device


def lr_at(step: int, total: int, base: float) -> float:
    """Linear warmup (10% of steps, at most 100), then cosine decay to 10% of base at the last step."""
    warmup = min(100, max(1, total // 10))
    if step <= warmup:
        return base * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class Trainer:
    def __init__(self, cfg: Config, splits: Splits, device, out: Emitter, stop: threading.Event):
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # keep stderr readable
        self.cfg, self.out, self.stop, self.device = cfg, out, stop, device
        self.torch = torch
        torch.set_num_threads(max(1, min(8, len(os.sched_getaffinity(0)))))
        torch.manual_seed(cfg.train.seed)
        random.seed(cfg.train.seed)

        L, B = cfg.data.seq_length, cfg.train.batch_size
        self.train_windows = windows(splits.train, L)  # [N_train, L+1]
        self.val_windows = windows(splits.val, L)[:EVAL_MAX_WINDOWS]  # [N_val, L+1]
        self.steps_per_epoch = len(self.train_windows) // B
        self.total_steps = cfg.train.epochs * self.steps_per_epoch
        if cfg.train.max_steps:
            self.total_steps = min(self.total_steps, cfg.train.max_steps)

        self.model = models.build_model(cfg.model.type, cfg.model.size, L).to(device)
        self.model.train()
        self.optimizer = self._make_optimizer()
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.model.precision == "fp16")
        self._order_epoch, self._order = -1, None
        out.log(
            f"device {device}, {torch.get_num_threads()} threads; {len(splits.train)} train / "
            f"{len(splits.val)} validation tokens; {len(self.train_windows)} windows of {L + 1} tokens, "
            f"{self.steps_per_epoch} steps per epoch"
        )

    def _make_optimizer(self):
        optim, t = self.torch.optim, self.cfg.train
        params = self.model.parameters()
        if t.optimizer == "adam":
            return optim.Adam(params, lr=t.learning_rate)
        if t.optimizer == "adamw":
            return optim.AdamW(params, lr=t.learning_rate, weight_decay=0.01)
        return optim.SGD(params, lr=t.learning_rate, momentum=0.9)

    def _autocast(self):
        precision = self.cfg.model.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = self.torch.bfloat16 if precision == "bf16" else self.torch.float16
        return self.torch.autocast(self.device.type, dtype=dtype)

    def _batch(self, step: int):
        """Windows for 1-based global step: same (seed, step) -> same batch, also after resume."""
        epoch, pos = divmod(step - 1, self.steps_per_epoch)
        if epoch != self._order_epoch:
            self._order_epoch = epoch
            self._order = epoch_order(len(self.train_windows), epoch, self.cfg.train.seed)
        B = self.cfg.train.batch_size
        idx = self._order[pos * B : (pos + 1) * B]  # [B]
        return self.train_windows[idx].to(self.device), epoch + 1  # [B, L+1], 1-based epoch

    def _forward(self, batch):
        """Loss via the model's label shift, and next-token accuracy. batch: [B, L+1]."""
        with self._autocast():
            out = self.model(input_ids=batch, labels=batch)  # logits [B, L+1, V]
        pred = out.logits[:, :-1].argmax(-1)  # [B, L]
        correct = (pred == batch[:, 1:]).sum()
        return out.loss, correct, pred.numel()

    def train_step(self, step: int) -> dict:
        batch, epoch = self._batch(step)
        lr = lr_at(step, self.total_steps, self.cfg.train.learning_rate)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        loss, correct, n = self._forward(batch)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP).item()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss.item()
        elapsed = max(time.perf_counter() - start, 1e-9)
        if not math.isfinite(loss):
            raise Diverged(f"loss is {loss} at step {step}; lower train.learning_rate")
        B = batch.shape[0]
        return dict(
            step=step,
            total_steps=self.total_steps,
            epoch=epoch,
            progress=step / self.total_steps,
            loss=loss,
            accuracy=correct.item() / n,
            lr=lr,
            grad_norm=grad_norm if math.isfinite(grad_norm) else None,  # None: fp16 overflow, step skipped
            batch_size=B,
            tokens_per_s=round(n / elapsed, 1),
            samples_per_s=round(B / elapsed, 2),
        )

    def evaluate(self) -> dict:
        torch = self.torch
        self.model.eval()
        loss_sum, correct, count = 0.0, 0, 0
        with torch.no_grad():
            for i in range(0, len(self.val_windows), self.cfg.train.batch_size):
                batch = self.val_windows[i : i + self.cfg.train.batch_size].to(self.device)  # [b, L+1]
                loss, c, n = self._forward(batch)
                loss_sum += loss.float().item() * n
                correct += c.item()
                count += n
        self.model.train()
        loss = loss_sum / count
        return dict(loss=loss, perplexity=math.exp(min(loss, 700.0)), accuracy=correct / count)

    def save_checkpoint(self, step: int, last_loss: float | None) -> None:
        from . import checkpoint

        cfg = self.cfg
        state = {
            "step": step,
            "epoch": (step - 1) // self.steps_per_epoch + 1,
            "batch_in_epoch": (step - 1) % self.steps_per_epoch + 1,
            "last_loss": last_loss,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": {"torch": self.torch.get_rng_state(), "python": random.getstate()},
            "meta": {
                "model_type": cfg.model.type,
                "model_size": cfg.model.size,
                "seq_length": cfg.data.seq_length,
                "batch_size": cfg.train.batch_size,
                "seed": cfg.train.seed,
                "optimizer": cfg.train.optimizer,
            },
        }
        path, nbytes = checkpoint.save(cfg.checkpoint.output_path, step, self.model, state)
        self.out.emit("checkpoint", step=step, path=str(path), bytes=nbytes)

    def restore(self, resume: str | None) -> tuple[int | None, float | None]:
        """Load --resume DIR, else the newest valid checkpoint in output_path. Returns (step, last loss)."""
        from . import checkpoint

        if resume:
            path = Path(resume)
            try:
                checkpoint.verify(path)
            except checkpoint.CheckpointError as e:
                raise ConfigError(f"--resume: not a valid checkpoint: {e}") from None
        else:
            path = checkpoint.find_latest(self.cfg.checkpoint.output_path, self.out.log)
            if path is None:
                return None, None
        meta = self.torch.load(path / "state.pt", weights_only=True)["meta"]
        cfg = self.cfg
        if (meta["model_type"], meta["model_size"], meta["optimizer"]) != (
            cfg.model.type,
            cfg.model.size,
            cfg.train.optimizer,
        ):
            raise ConfigError(
                f"model.size: checkpoint {path} was written for {meta['model_type']}/{meta['model_size']} "
                f"with {meta['optimizer']}; this config is {cfg.model.type}/{cfg.model.size} "
                f"with {cfg.train.optimizer}"
            )
        if (meta["seq_length"], meta["batch_size"], meta["seed"]) != (
            cfg.data.seq_length,
            cfg.train.batch_size,
            cfg.train.seed,
        ):
            self.out.log(
                f"checkpoint {path} used other seq_length/batch_size/seed; data order differs", "warning"
            )
        state = checkpoint.load(path, self.model, self.optimizer)
        self.scaler.load_state_dict(state["scaler"])
        self.torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        self.out.log(f"resumed from {path.resolve()} at step {state['step']}")
        return state["step"], state["last_loss"]

    def run(self, resume: str | None) -> int:
        cfg, out = self.cfg, self.out
        resumed_from, last_loss = self.restore(resume)
        out.emit(
            "start",
            session_id=cfg.run.session_id,
            total_steps=self.total_steps,
            parameters=sum(p.numel() for p in self.model.parameters()),
            world_size=cfg.world_size,
            model={"type": cfg.model.type, "size": cfg.model.size, "precision": cfg.model.precision},
            resumed_from=resumed_from,
        )
        step = resumed_from or 0
        interval, last_eval = cfg.checkpoint.interval, None
        while step < self.total_steps:
            step += 1
            metrics = self.train_step(step)
            last_loss = metrics["loss"]
            out.emit("step", **metrics)
            checkpointed = bool(interval) and step % interval == 0
            if checkpointed:
                self.save_checkpoint(step, last_loss)
                last_eval = {"step": step, **self.evaluate()}
                out.emit("eval", **last_eval)
            if self.stop.is_set():
                if not checkpointed:
                    self.save_checkpoint(step, last_loss)
                out.log(f"stop signal received: stopped after step {step} with a checkpoint", "warning")
                return EXIT_STOPPED

        if last_eval is None or last_eval["step"] != step:
            last_eval = {"step": step, **self.evaluate()}
            out.emit("eval", **last_eval)
        final = Path(cfg.run.final_path).resolve()
        self.model.save_pretrained(final)
        (final / "cotrain_tokenizer.json").write_text(json.dumps(TOKENIZER_INFO, indent=2) + "\n")
        out.emit("done", step=step, loss=last_loss, final_path=str(final), eval_loss=last_eval["loss"])
        return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads sleep instead of spinning while waiting: spinning threads stall badly (seconds
    # per step) when other processes share the cores. Read when torch loads, so set it first.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    out = Emitter.take_stdout()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    watch_parent()
    try:
        args = _parse_args(argv)
        cfg = load_config(args.config)
        device = check_resources(cfg)
        tokens = encode(load_text(cfg.data.data_path))
        splits = split_tokens(tokens, cfg.data.seq_length, cfg.train.batch_size)
        return Trainer(cfg, splits, device, out, stop).run(args.resume)
    except ConfigError as e:
        out.error("config", str(e), retryable=False)
        return EXIT_CONFIG
    except DataError as e:
        out.error("data", str(e), retryable=False)
        return EXIT_DATA
    except Diverged as e:
        out.error("runtime", str(e), retryable=False)
        return EXIT_RUNTIME
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        out.error("runtime", f"{type(e).__name__}: {e}", retryable=True)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
