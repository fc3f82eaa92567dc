"""Cotrain trainer entry point (one process, a launcher of local ranks, or one rank under torchrun).

    python -m cotrain_core.train --config run.toml [--resume CHECKPOINT_DIR] [--dry-run]

stdout carries only JSON-lines events (docs/protocol.md); human-readable logs go to stderr.
Exit codes: 0 done, 2 config error, 3 data error, 4 stopped by SIGTERM/SIGINT after writing a
checkpoint, 1 (or any other) retryable runtime error.
Without --resume the newest valid checkpoint in checkpoint.output_path is resumed automatically.
With distributed.nodes x gpus_per_node > 1 this process launches and supervises the local ranks
(launch.py); ranks train with the configured strategy (strategies/).
"""

import os

# The parent to watch, read before the heavy imports below (torch): a parent that dies while we
# import must not be missed. The launcher passes its pid to workers in COTRAIN_PARENT_PID.
_PARENT_AT_START = int(os.environ.get("COTRAIN_PARENT_PID") or os.getppid())

import sys

# A config with [load] events_per_second > 0 asks for the load generator (load.py), which needs
# none of the imports below: hand over before them, so that it never loads torch.
if __name__ == "__main__":
    from . import load

    if load.wanted(sys.argv[1:]):
        sys.exit(load.main())

import argparse
import math
import random
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import checkpointing, data, export, launch, models, objective, speed
from .config import Config, ConfigError, read_config
from .data import DataError
from .distributed import Dist, destroy, init_distributed, lost_peer
from .events import Emitter
from .objective import EVAL_MAX_WINDOWS, lr_at
from .plan import check_resources, flops_per_token, make_plan, peak_flops, steps_of

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG, EXIT_DATA, EXIT_STOPPED = 0, 1, 2, 3, 4
SYSTEM_INTERVAL_S = float(os.environ.get("COTRAIN_SYSTEM_INTERVAL_S", "30"))  # `system` event period


@dataclass
class _Launched:
    """A queued step whose metrics are still on the device."""

    step: int
    epoch: int
    lr: float
    values: object  # float64 tensor [loss (sum over micro-batches / their number), correct, count, stop]
    work: object  # the async all-reduce of values, or None
    grad_norm: object  # 0-dim tensor
    timer: speed.StepTimer
    allreduce_bytes: int  # this rank's payload so far, the step's outer step included
    syncs: list  # `sync` events of the outer steps (DiLoCo) done in this step


class Diverged(Exception):
    """The loss became NaN/inf; retrying the same config would diverge again."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(f"arguments: {message}")


def _parse_args(argv):
    p = _Parser(prog="python -m cotrain_core.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="TOML run config (see docs/config.md)")
    p.add_argument("--resume", help="checkpoint directory (<output_path>/step-<n>) to resume from")
    p.add_argument("--dry-run", action="store_true", help="print the resolved plan as one event and exit")
    return p.parse_args(argv)


def watch_parent(poll_s: float = 1.0) -> None:
    """Exit promptly if our parent process dies, so no orphaned trainer keeps running."""
    parent = _PARENT_AT_START
    if os.getppid() != parent:
        sys.stderr.write(f"cotrain-core: parent process {parent} exited during startup; stopping\n")
        os._exit(EXIT_RUNTIME)

    def loop():
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                sys.stderr.write(f"cotrain-core: parent process {parent} exited; stopping\n")
                sys.stderr.flush()
                os._exit(EXIT_RUNTIME)

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


class Trainer:
    def __init__(self, cfg: Config, prepared, ctx, out: Emitter, stop: threading.Event):
        import torch
        from transformers.utils import logging as hf_logging

        from . import strategies

        hf_logging.disable_progress_bar()  # keep stderr readable
        self.cfg, self.out, self.stop, self.ctx, self.device = cfg, out, stop, ctx, ctx.device
        self.dist = Dist(ctx)
        self.torch = torch
        self.prepared = prepared
        self.family = models.family(cfg.model.type)
        torch.manual_seed(cfg.train.seed)
        random.seed(cfg.train.seed)

        L = cfg.data.seq_length
        self.train_windows = prepared.train  # [N_train, L+1]
        self.val_windows = prepared.val[:EVAL_MAX_WINDOWS]  # [N_val, L+1]
        self.steps_per_epoch, self.total_steps = steps_of(cfg, len(self.train_windows))
        self.per_rank_batch = cfg.per_rank_batch
        self.micro = cfg.train.micro_batch_size

        if self.device.type == "cuda":  # fp32 matmuls in TF32 (docs/decisions.md)
            torch.set_float32_matmul_precision("high")
        # same init on every rank; activation checkpointing and torch.compile applied (speed.py)
        model = strategies.build_model(cfg, prepared.vocab_size, ctx)
        model.train()
        self.parameters = sum(p.numel() for p in model.parameters())
        torch.manual_seed(cfg.train.seed + 7919 * ctx.rank)  # per-rank RNG (dropout) after the shared init
        self.strategy = strategies.make(
            cfg.distributed.strategy, model, ctx, cfg.distributed.diloco, cfg.model.precision
        )
        self.optimizer = self._make_optimizer()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.model.precision == "fp16")
        self._order_epoch, self._order = -1, None
        self.peak = peak_flops(self.device)
        self.flops_per_token = flops_per_token(models.plan(cfg, prepared.vocab_size), L)
        self.checkpoints = checkpointing.Checkpointer(self)
        self._last_system = None
        out.log(
            f"device {self.device}, {torch.get_num_threads()} threads, rank {ctx.rank}/{ctx.world_size}, "
            f"strategy {cfg.distributed.strategy}; {len(self.train_windows)} train windows of {L + 1} "
            f"tokens, "
            f"{self.steps_per_epoch} steps per epoch; per-rank batch {self.per_rank_batch} in "
            f"{cfg.grad_accum_steps} micro-batches"
        )

    def _make_optimizer(self):
        """Adam(W) with the fused CUDA kernel on GPUs, the multi-tensor (foreach) loop elsewhere."""
        optim, t = self.torch.optim, self.cfg.train
        params = list(self.strategy.parameters())
        kernel = {"fused": True} if self.device.type == "cuda" else {"foreach": True}
        if t.optimizer == "adam":
            return optim.Adam(params, lr=t.learning_rate, weight_decay=t.weight_decay, **kernel)
        if t.optimizer == "adamw":
            return optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay, **kernel)
        return optim.SGD(params, lr=t.learning_rate, momentum=0.9, weight_decay=t.weight_decay, foreach=True)

    def _autocast(self):
        import contextlib

        precision = self.cfg.model.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = self.torch.bfloat16 if precision == "bf16" else self.torch.float16
        return self.torch.autocast(self.device.type, dtype=dtype)

    def _batch(self, step: int):
        """This rank's windows for 1-based global step: same (seed, step, rank) -> same batch after resume."""
        epoch, pos = divmod(step - 1, self.steps_per_epoch)
        if epoch != self._order_epoch:
            self._order_epoch = epoch
            self._order = data.epoch_order(len(self.train_windows), epoch, self.cfg.train.seed)
        idx = data.rank_indices(self._order, pos, self.per_rank_batch, self.ctx.rank, self.ctx.world_size)
        windows = self.train_windows[idx]  # [b, L+1]
        if self.device.type == "cuda":  # a copy from pinned memory does not wait for queued GPU work
            windows = windows.pin_memory()
        return windows.to(self.device, non_blocking=True), epoch + 1  # 1-based epoch

    def _loss(self, model, batch, generator):
        with self._autocast():
            return objective.loss_and_accuracy(
                model,
                batch,
                self.family,
                self.cfg.data.mlm_probability,
                generator,
                self.prepared.pad_id,
                self.prepared.mask_id,
            )

    def train_step(self, step: int) -> "_Launched":
        """Queue one optimizer step on this rank, with the strategy's outer step where one is due (its
        time counts in the step's throughput). Its metrics stay on the device (an all-reduce of
        them and of the stop flag is started, not waited for) until _report reads them, so the host
        can queue the next step while the GPU still works on this one."""
        torch, strategy = self.torch, self.strategy
        batch, epoch = self._batch(step)
        lr = lr_at(step, self.total_steps, self.cfg.train) * strategy.inner_lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        timer = speed.StepTimer(self.device)
        timer.start()
        chunks = batch.split(self.micro)  # [micro, L+1] each
        generator = objective.step_generator(self.cfg.train.seed, step, self.ctx.rank)  # masks (bert)
        loss_sum, correct, count = 0.0, 0, 0
        for i, mb in enumerate(chunks):
            with strategy.accumulate(last=i == len(chunks) - 1):
                loss, c, n = self._loss(strategy.model, mb, generator)
                self.scaler.scale(loss / len(chunks)).backward()
            loss_sum += loss.detach().double()
            correct += c
            count += n
        self.scaler.unscale_(self.optimizer)
        grad_norm = strategy.grad_norm_and_clip(self.cfg.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        syncs = strategy.after_step(step, self.total_steps)  # DiLoCo's outer step(s), else []
        timer.stop()
        full = lambda value: torch.full((), float(value), dtype=torch.float64, device=self.device)  # noqa: E731
        values = torch.stack(
            [loss_sum / len(chunks), correct + full(0), full(count), full(self.stop.is_set())]
        )
        work = None
        if strategy.sync_metrics_every_step and self.ctx.distributed:
            # ddp/fsdp: global mean loss and any rank's stop flag; DiLoCo: rank 0's local loss
            import torch.distributed as dist

            work = dist.all_reduce(values, async_op=True)
        return _Launched(step, epoch, lr, values, work, grad_norm, timer, strategy.allreduce_bytes, syncs)

    def _report(self, launched: "_Launched") -> bool:
        """Wait for a queued step's metrics, emit its `step` event; returns whether any rank asked to
        stop when it was queued (only agreed on under per-step metric sync; else False)."""
        if launched.work is not None:
            launched.work.wait()
        loss, correct, count, stops = launched.values.tolist()
        synced = self.strategy.sync_metrics_every_step
        if synced:
            loss /= self.ctx.world_size
        if not math.isfinite(loss):
            raise Diverged(f"loss is {loss} at step {launched.step}; lower train.learning_rate")
        grad_norm = float(launched.grad_norm)
        elapsed = launched.timer.seconds()
        B = self.cfg.train.batch_size
        tokens = B * self.cfg.data.seq_length
        metrics = dict(
            step=launched.step,
            total_steps=self.total_steps,
            epoch=launched.epoch,
            progress=launched.step / self.total_steps,
            loss=loss,
            accuracy=min(1.0, correct / max(count, 1.0)),
            lr=launched.lr,
            grad_norm=grad_norm if math.isfinite(grad_norm) else None,  # None: fp16 overflow, step skipped
            batch_size=B,
            tokens_per_s=round(tokens / elapsed, 1),
            samples_per_s=round(B / elapsed, 2),
        )
        if self.peak:  # MFU: model FLOPs per second per device / the device's peak (plan.flops_per_token)
            rate = self.flops_per_token * tokens / self.ctx.world_size / elapsed
            metrics["mfu"] = round(rate / self.peak, 4)
        if launched.allreduce_bytes or self.ctx.distributed:
            metrics["allreduce_bytes"] = launched.allreduce_bytes
        self.last_loss = loss
        self.out.emit("step", **metrics)
        return synced and stops > 0

    def evaluate(self) -> dict:
        """Loss / perplexity / accuracy on the validation windows (objective.evaluate_windows: the same
        numbers as `python -m cotrain_core.evaluate`). Every rank runs it on the full model (FSDP needs
        the same forwards on all ranks), so the result is identical everywhere without communication."""
        cfg, p = self.cfg, self.prepared
        return objective.evaluate_windows(
            self.strategy.module,
            self.val_windows,
            self.family,
            cfg.data.mlm_probability,
            p.pad_id,
            p.mask_id,
            batch_size=cfg.train.batch_size,
            device=self.device,
            autocast=self._autocast if cfg.model.precision != "fp32" else None,
        )

    def _system(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.ctx.local_rank == 0 and (force or now - self._last_system >= SYSTEM_INTERVAL_S):
            from . import system

            self._last_system = now
            self.out.emit("system", **system.sample())

    def run(self, resume: str | None) -> int:
        cfg, out, strategy = self.cfg, self.out, self.strategy
        resumed_from, last_loss = self.checkpoints.restore(resume)
        out.emit(
            "start",
            session_id=cfg.run.session_id,
            total_steps=self.total_steps,
            parameters=self.parameters,
            world_size=cfg.world_size,
            model={"type": cfg.model.type, "size": cfg.model.size, "precision": cfg.model.precision},
            resumed_from=resumed_from,
            strategy=cfg.distributed.strategy,
        )
        self._last_system = time.monotonic()
        self._system(force=True)
        step = resumed_from or 0
        self.last_loss = last_loss
        interval, last_eval, queued = cfg.checkpoint.interval, None, None
        while step < self.total_steps:
            step += 1
            launched = self.train_step(step)
            # the previous step's event once this one is queued: the GPU never waits for the host
            stop = self._report(queued) if queued is not None else False
            queued = launched
            syncs = launched.syncs
            boundary = strategy.boundary(step, self.total_steps)
            checkpointed = boundary and bool(interval) and step % interval == 0
            last = step == self.total_steps
            if not (
                stop or syncs or checkpointed or last or boundary and not strategy.sync_metrics_every_step
            ):
                self._system()
                continue  # nothing needs this step's numbers yet
            stop = self._report(launched) or stop
            queued = None
            for sync in syncs:
                out.emit("sync", **sync)
            self._system()
            if not boundary:
                continue
            if not strategy.sync_metrics_every_step:
                stop = self.dist.all_sum([float(self.stop.is_set())])[0] > 0
            if checkpointed:  # evaluated first: the checkpoint records its eval loss (keep_best)
                last_eval = {"step": step, **self.evaluate()}
                out.emit("eval", **last_eval)
                self.checkpoints.save(step, self.last_loss, last_eval["loss"])
            if stop:
                if not checkpointed:
                    self.checkpoints.save(step, self.last_loss)
                self.checkpoints.wait()
                out.log(f"stop signal received: stopped after step {step} with a checkpoint", "warning")
                return EXIT_STOPPED
        self.checkpoints.wait()

        if last_eval is None or last_eval["step"] != step:
            last_eval = {"step": step, **self.evaluate()}
            out.emit("eval", **last_eval)
        final = Path(cfg.run.final_path).resolve()
        full = strategy.model_state_dict()  # collective under fsdp
        files = []
        if self.ctx.rank == 0:
            sharded = strategy.sharded
            files = export.write_final(
                final,
                lambda directory: export.save_model(strategy.module, full if sharded else None, directory),
                cfg,
                self.prepared,
                step=step,
                parameters=self.parameters,
                eval_metrics={k: last_eval[k] for k in ("loss", "perplexity", "accuracy")},
            )
        self.dist.barrier()
        out.emit(
            "done",
            step=step,
            loss=self.last_loss,
            final_path=str(final),
            eval_loss=last_eval["loss"],
            parameters=self.parameters,
            data_fingerprint=self.prepared.fingerprint,
            validation_path=str(self.prepared.validation_path.resolve()),
            files=files,
            bytes=sum(f["bytes"] for f in files),
        )
        return EXIT_OK


def _prepare_data(cfg: Config, ctx, env):
    """Local rank 0 tokenizes (cached on disk); the others wait, then read the cache."""
    if not ctx.distributed:
        return data.prepare(cfg)
    local0 = env.local_rank == 0
    prepared = data.prepare(cfg) if local0 else None
    Dist(ctx).barrier()
    return prepared if local0 else data.prepare(cfg)


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads sleep instead of spinning while waiting: spinning threads stall badly (seconds
    # per step) when other processes share the cores. Read when torch loads, so set it first.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = sys.argv[1:] if argv is None else argv
    env = launch.worker_env()
    rank0 = env is None or env.rank == 0
    # Global rank 0 speaks for the run; each node's first rank also samples its own machine.
    node0 = env is not None and env.local_rank == 0
    out = Emitter.take_stdout(only=None if rank0 else ("error", "system") if node0 else ("error",))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    watch_parent()
    distributed = False
    try:
        args = _parse_args(argv)
        cfg, defaulted = read_config(args.config)
        if args.dry_run:
            out.emit("plan", **make_plan(cfg, defaulted))
            return EXIT_OK
        if env is None and cfg.world_size > 1:
            return launch.launch(argv, cfg.distributed.nodes, cfg.distributed.gpus_per_node, out, stop)
        ctx, local_world = init_distributed(cfg, env)
        distributed = ctx.distributed
        prepared = _prepare_data(cfg, ctx, env)
        check_resources(cfg, ctx.device, prepared.vocab_size, local_world)
        return Trainer(cfg, prepared, ctx, out, stop).run(args.resume)
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
        kind = "peer" if distributed and lost_peer(e) else "runtime"
        out.error(kind, f"{type(e).__name__}: {e}", retryable=True)
        return EXIT_RUNTIME
    finally:
        if distributed:
            destroy()


if __name__ == "__main__":
    code = main()
    # Leave without running interpreter teardown: torch.distributed's C++ threads (gloo workers of
    # process groups, checkpoint I/O) can abort the process there ("terminate called without an
    # active exception") after training has ended well. Every event and file is written by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
