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
from pathlib import Path

from . import data, launch, models, objective
from .config import Config, ConfigError, load_config
from .data import DataError
from .events import Emitter
from .objective import EVAL_MAX_WINDOWS, lr_at

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG, EXIT_DATA, EXIT_STOPPED = 0, 1, 2, 3, 4
DIST_TIMEOUT_S = float(os.environ.get("COTRAIN_DIST_TIMEOUT_S", "600"))  # process group init + collectives
SYSTEM_INTERVAL_S = float(os.environ.get("COTRAIN_SYSTEM_INTERVAL_S", "30"))  # `system` event period
# bf16 dense peak FLOP/s per device (torchtitan / prime table); unknown GPUs count as A100
PEAK_FLOPS = {"H200": 989e12, "H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12, "A100": 312e12}
PEAK_FLOPS |= {"L40S": 362e12, "A10G": 125e12, "L4": 121e12, "RTX 4090": 165e12}


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


def peak_flops(device) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_FLOPS.items():
        if key in name:
            return flops
    return PEAK_FLOPS["A100"]


def check_resources(cfg: Config, device, vocab_size: int, local_world: int) -> None:
    """Config checks that need the machine: precision support and memory (per rank)."""
    import torch

    cuda = device.type == "cuda"
    if cfg.model.precision == "fp16" and not cuda:
        raise ConfigError("model.precision: fp16 needs a CUDA GPU (use bf16 or fp32 on CPU)")
    plan = models.plan(cfg, vocab_size)
    need = plan["bytes_for_training"]
    if cfg.distributed.strategy == "fsdp":
        need //= cfg.world_size
    if cuda:
        have, where = torch.cuda.mem_get_info(device)[0], "free GPU memory"
    else:
        have, where = available_memory_bytes(), "available RAM"
        need *= local_world  # all local ranks share the RAM
    if have is not None and need > have:
        raise ConfigError(
            f"model.size: {cfg.model.size} needs about {need / 2**30:.1f} GiB for weights, gradients and "
            f"{cfg.train.optimizer} state ({plan['parameters'] / 1e9:.2f}B parameters, "
            f"{cfg.distributed.strategy}); only {have / 2**30:.1f} GiB {where}"
        )


def steps_of(cfg: Config, n_train_windows: int) -> tuple[int, int]:
    """(steps per epoch, total steps) for a config and data size."""
    steps_per_epoch = n_train_windows // cfg.train.batch_size
    total = cfg.train.epochs * steps_per_epoch
    if cfg.train.max_steps:
        total = min(total, cfg.train.max_steps)
    inner = cfg.distributed.diloco.inner_steps
    if cfg.distributed.strategy == "diloco" and total >= inner:
        total -= total % inner  # whole outer steps (a shorter run has one partial outer step)
    return steps_per_epoch, total


def make_plan(cfg: Config) -> dict:
    """The resolved plan for --dry-run: tokenizes the data (cached) but allocates no weights."""
    prepared = data.prepare(cfg)
    model = models.plan(cfg, prepared.vocab_size)
    steps_per_epoch, total = steps_of(cfg, len(prepared.train))
    d = cfg.distributed
    diloco = d.strategy == "diloco"
    inner = d.diloco.inner_steps if diloco else None
    return dict(
        model={**model, "precision": cfg.model.precision},
        parameters=model["parameters"],
        world_size=cfg.world_size,
        nodes=d.nodes,
        gpus_per_node=d.gpus_per_node,
        strategy=d.strategy,
        batch_size=cfg.train.batch_size,
        per_rank_batch=cfg.per_rank_batch,
        micro_batch_size=cfg.train.micro_batch_size,
        micro_batches=cfg.grad_accum_steps,
        seq_length=cfg.data.seq_length,
        tokens_per_step=cfg.train.batch_size * cfg.data.seq_length,
        train_windows=len(prepared.train),
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        inner_steps=inner,
        outer_steps=math.ceil(total / inner) if diloco else None,
        pseudo_grad_dtype=d.diloco.pseudo_grad_dtype if diloco else None,
    )


class Dist:
    """torch.distributed helpers that degrade to no-ops in a single process."""

    def __init__(self, ctx):
        self.ctx = ctx

    def barrier(self):
        if self.ctx.distributed:
            import torch.distributed as dist

            dist.barrier()

    def all_sum(self, values: list[float]) -> list[float]:
        """Sum small control values (metrics, stop flags) over ranks in float64 (not counted as payload)."""
        if not self.ctx.distributed:
            return values
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.ctx.device)
        dist.all_reduce(t)
        return t.tolist()

    def broadcast(self, obj):
        if not self.ctx.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


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

        model = models.build_model(cfg, prepared.vocab_size).to(self.device)  # same init on every rank
        model.train()
        self.parameters = sum(p.numel() for p in model.parameters())
        torch.manual_seed(cfg.train.seed + 7919 * ctx.rank)  # per-rank RNG (dropout) after the shared init
        self.strategy = strategies.make(cfg.distributed.strategy, model, ctx, cfg.distributed.diloco)
        self.optimizer = self._make_optimizer()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.model.precision == "fp16")
        self._order_epoch, self._order = -1, None
        self.peak = peak_flops(self.device)
        self.ckpt_token = self.dist.broadcast(os.getpid())  # names the shared temporary checkpoint dir
        self._last_system = None
        out.log(
            f"device {self.device}, {torch.get_num_threads()} threads, rank {ctx.rank}/{ctx.world_size}, "
            f"strategy {cfg.distributed.strategy}; {len(self.train_windows)} train windows of {L + 1} "
            f"tokens, "
            f"{self.steps_per_epoch} steps per epoch; per-rank batch {self.per_rank_batch} in "
            f"{cfg.grad_accum_steps} micro-batches"
        )

    def _make_optimizer(self):
        optim, t = self.torch.optim, self.cfg.train
        params = list(self.strategy.parameters())
        if t.optimizer == "adam":
            return optim.Adam(params, lr=t.learning_rate, weight_decay=t.weight_decay)
        if t.optimizer == "adamw":
            return optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
        return optim.SGD(params, lr=t.learning_rate, momentum=0.9, weight_decay=t.weight_decay)

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
        return self.train_windows[idx].to(self.device), epoch + 1  # [b, L+1], 1-based epoch

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

    def train_step(self, step: int) -> tuple[dict, bool]:
        """One optimizer step on this rank; returns (step metrics, stop requested on any rank)."""
        strategy = self.strategy
        batch, epoch = self._batch(step)
        lr = lr_at(step, self.total_steps, self.cfg.train)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        chunks = batch.split(self.micro)  # [micro, L+1] each
        generator = objective.step_generator(self.cfg.train.seed, step, self.ctx.rank)  # masks (bert)
        loss_sum, correct, count = 0.0, 0.0, 0
        for i, mb in enumerate(chunks):
            with strategy.accumulate(last=i == len(chunks) - 1):
                loss, c, n = self._loss(strategy.model, mb, generator)
                self.scaler.scale(loss / len(chunks)).backward()
            loss_sum += loss.detach().float()
            correct += c
            count += n
        self.scaler.unscale_(self.optimizer)
        grad_norm = strategy.grad_norm_and_clip(self.cfg.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        loss = float(loss_sum) / len(chunks)
        correct, count = float(correct), float(count)
        elapsed = max(time.perf_counter() - start, 1e-9)
        stop = self.stop.is_set()
        if strategy.sync_metrics_every_step:  # ddp/fsdp: global mean loss; DiLoCo: rank 0's local loss
            w = self.ctx.world_size
            loss, correct, count, stops = self.dist.all_sum([loss, correct, count, float(stop)])
            loss /= w
            stop = stops > 0
        if not math.isfinite(loss):
            raise Diverged(f"loss is {loss} at step {step}; lower train.learning_rate")
        B = self.cfg.train.batch_size
        tokens = B * self.cfg.data.seq_length
        metrics = dict(
            step=step,
            total_steps=self.total_steps,
            epoch=epoch,
            progress=step / self.total_steps,
            loss=loss,
            accuracy=min(1.0, correct / max(count, 1.0)),
            lr=lr,
            grad_norm=grad_norm if math.isfinite(grad_norm) else None,  # None: fp16 overflow, step skipped
            batch_size=B,
            tokens_per_s=round(tokens / elapsed, 1),
            samples_per_s=round(B / elapsed, 2),
        )
        if self.peak:  # MFU = 6 N tokens/s per device / peak FLOP/s of the device
            metrics["mfu"] = round(
                6 * self.parameters * tokens / self.ctx.world_size / elapsed / self.peak, 4
            )
        if strategy.allreduce_bytes or self.ctx.distributed:
            metrics["allreduce_bytes"] = strategy.allreduce_bytes
        return metrics, stop

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

    def _meta(self) -> dict:
        cfg = self.cfg
        return {
            "model_type": cfg.model.type,
            "model_size": cfg.model.size,
            "seq_length": cfg.data.seq_length,
            "batch_size": cfg.train.batch_size,
            "seed": cfg.train.seed,
            "optimizer": cfg.train.optimizer,
            "strategy": cfg.distributed.strategy,
            "world_size": cfg.world_size,
        }

    def _rng_state(self) -> dict:
        torch = self.torch
        rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def save_checkpoint(self, step: int, last_loss: float | None, eval_loss: float | None = None) -> None:
        """Write step-<n>/ from every rank; rank 0 commits it, prunes (newest keep_last + the best by
        eval loss) and emits `checkpoint`, then `checkpoint_deleted` for each one pruned."""
        from . import checkpoint

        cfg, rank, strategy = self.cfg, self.ctx.rank, self.strategy
        root = Path(cfg.checkpoint.output_path).resolve()
        if rank == 0:
            checkpoint.begin(root, step, self.ckpt_token)
        self.dist.barrier()
        tmp = root / f"step-{step}.tmp-{self.ckpt_token}"
        model_state = strategy.model_state_dict()  # collective under fsdp
        opt_state = strategy.optimizer_state_dict(self.optimizer)  # collective under fsdp
        state = None
        if rank == 0:
            state = {
                "step": step,
                "epoch": (step - 1) // self.steps_per_epoch + 1,
                "batch_in_epoch": (step - 1) % self.steps_per_epoch + 1,
                "last_loss": last_loss,
                "optimizer": None if strategy.optimizer_per_rank else opt_state,
                "strategy": strategy.extra_state_dict(),
                "meta": self._meta(),
            }
        rank_state = {
            "rng": self._rng_state(),
            "scaler": self.scaler.state_dict(),
            "optimizer": opt_state if strategy.optimizer_per_rank else None,
        }
        checkpoint.write(tmp, rank, model_state, state, rank_state)
        self.dist.barrier()
        if rank == 0:
            c = cfg.checkpoint
            path, nbytes, deleted = checkpoint.commit(
                root, tmp, step, cfg.world_size, c.keep_last, eval_loss, c.keep_best
            )
            sha = checkpoint._sha256(path / "manifest.json")
            self.out.emit(
                "checkpoint", step=step, path=str(path), bytes=nbytes, sha256=sha, eval_loss=eval_loss
            )
            for old_step, old_path in deleted:
                self.out.emit("checkpoint_deleted", step=old_step, path=str(old_path))
        self.dist.barrier()

    def _resume_path(self, resume: str | None) -> Path | None:
        from . import checkpoint

        if resume:
            path = Path(resume)
            try:
                checkpoint.verify(path)
            except checkpoint.CheckpointError as e:
                raise ConfigError(f"--resume: not a valid checkpoint: {e}") from None
            return path.resolve()
        found = None
        if self.ctx.rank == 0:
            found = checkpoint.find_latest(self.cfg.checkpoint.output_path, self.out.log)
            found = str(found) if found else None
        found = self.dist.broadcast(found)
        return Path(found) if found else None

    def restore(self, resume: str | None) -> tuple[int | None, float | None]:
        """Load --resume DIR, else the newest valid checkpoint in output_path. Returns (step, last loss)."""
        from . import checkpoint

        path = self._resume_path(resume)
        if path is None:
            return None, None
        state = checkpoint.load_state(path)
        meta, mine = state["meta"], self._meta()
        for key, name in (
            ("model_type", "model.type"),
            ("model_size", "model.size"),
            ("optimizer", "train.optimizer"),
            ("strategy", "distributed.strategy"),
            ("world_size", "distributed.nodes"),
        ):
            if meta.get(key, mine[key] if key in ("strategy", "world_size") else None) != mine[key]:
                raise ConfigError(
                    f"{name}: checkpoint {path} was written with {key} {meta.get(key)!r}; this config has "
                    f"{mine[key]!r} (start a new checkpoint.output_path, or pass a matching --resume)"
                )
        if (meta["seq_length"], meta["batch_size"], meta["seed"]) != (
            mine["seq_length"],
            mine["batch_size"],
            mine["seed"],
        ):
            self.out.log(
                f"checkpoint {path} used other seq_length/batch_size/seed; data order differs", "warning"
            )
        try:
            rank_state = checkpoint.load_rank_state(path, self.ctx.rank)
        except checkpoint.CheckpointError as e:
            raise ConfigError(f"distributed.nodes: {e}") from None
        strategy = self.strategy
        strategy.load_model_state_dict(checkpoint.load_model(path))
        opt = rank_state["optimizer"] if strategy.optimizer_per_rank else state["optimizer"]
        strategy.load_optimizer_state_dict(self.optimizer, opt)
        strategy.load_extra_state_dict(state.get("strategy") or {})
        self.scaler.load_state_dict(rank_state["scaler"])
        self.torch.set_rng_state(rank_state["rng"]["torch"])
        random.setstate(rank_state["rng"]["python"])
        if "cuda" in rank_state["rng"] and self.device.type == "cuda":
            self.torch.cuda.set_rng_state(rank_state["rng"]["cuda"], self.device)
        self.out.log(f"resumed from {path} at step {state['step']}")
        return state["step"], state["last_loss"]

    def _system(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.ctx.local_rank == 0 and (force or now - self._last_system >= SYSTEM_INTERVAL_S):
            from . import system

            self._last_system = now
            self.out.emit("system", **system.sample())

    def run(self, resume: str | None) -> int:
        cfg, out, strategy = self.cfg, self.out, self.strategy
        resumed_from, last_loss = self.restore(resume)
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
        interval, last_eval = cfg.checkpoint.interval, None
        while step < self.total_steps:
            step += 1
            metrics, stop = self.train_step(step)
            last_loss = metrics["loss"]
            out.emit("step", **metrics)
            sync = strategy.after_step(step, self.total_steps)
            if sync is not None:
                out.emit("sync", **sync)
            self._system()
            if not strategy.boundary(step, self.total_steps):
                continue
            if not strategy.sync_metrics_every_step:
                stop = self.dist.all_sum([float(self.stop.is_set())])[0] > 0
            checkpointed = bool(interval) and step % interval == 0
            if checkpointed:  # evaluated first: the checkpoint records its eval loss (keep_best)
                last_eval = {"step": step, **self.evaluate()}
                out.emit("eval", **last_eval)
                self.save_checkpoint(step, last_loss, last_eval["loss"])
            if stop:
                if not checkpointed:
                    self.save_checkpoint(step, last_loss)
                out.log(f"stop signal received: stopped after step {step} with a checkpoint", "warning")
                return EXIT_STOPPED

        if last_eval is None or last_eval["step"] != step:
            last_eval = {"step": step, **self.evaluate()}
            out.emit("eval", **last_eval)
        final = Path(cfg.run.final_path).resolve()
        full = strategy.model_state_dict()  # collective under fsdp
        files = self._save_final(final, full, step, last_eval) if self.ctx.rank == 0 else []
        self.dist.barrier()
        out.emit(
            "done",
            step=step,
            loss=last_loss,
            final_path=str(final),
            eval_loss=last_eval["loss"],
            parameters=self.parameters,
            data_fingerprint=self.prepared.fingerprint,
            validation_path=str(self.prepared.validation_path.resolve()),
            files=files,
            bytes=sum(f["bytes"] for f in files),
        )
        return EXIT_OK

    def _save_final(self, final: Path, state: dict, step: int, last_eval: dict) -> list[dict]:
        """The final directory (export.py); returns its files."""
        from . import export

        def save_model(directory: Path) -> None:
            module = self.strategy.module
            if self.strategy.name == "fsdp" and self.ctx.distributed:  # plain copy of the gathered weights
                from transformers import AutoConfig

                module.config.save_pretrained(directory)
                with self.torch.device("meta"):
                    plain = type(module)(AutoConfig.from_pretrained(directory))
                plain.load_state_dict(state, assign=True)
                module = plain
            module.save_pretrained(directory)

        metrics = {k: last_eval[k] for k in ("loss", "perplexity", "accuracy")}
        return export.write_final(
            final,
            save_model,
            self.cfg,
            self.prepared,
            step=step,
            parameters=self.parameters,
            eval_metrics=metrics,
        )


def init_distributed(cfg: Config, env):
    """Process group (gloo on CPU, nccl with one GPU per local rank) and this rank's context."""
    import datetime

    import torch

    from .strategies import DistContext

    cuda = torch.cuda.is_available()
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    local_world = 1
    if env is not None:
        if env.world_size != cfg.world_size:
            raise ConfigError(
                f"distributed.nodes: WORLD_SIZE={env.world_size} in the environment, but nodes x "
                f"gpus_per_node = {cfg.world_size}"
            )
        ctx = DistContext(rank=env.rank, world_size=env.world_size, local_rank=env.local_rank)
        local_world = env.local_world_size
    if cuda:
        if ctx.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"distributed.gpus_per_node: local rank {ctx.local_rank} but only "
                f"{torch.cuda.device_count()} GPUs are visible"
            )
        ctx.device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(ctx.device)
    else:
        ctx.device = torch.device("cpu")
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, min(8, cores // local_world)))
    if ctx.distributed:
        import torch.distributed as dist

        dist.init_process_group(
            "nccl" if cuda else "gloo",
            rank=ctx.rank,
            world_size=ctx.world_size,
            timeout=datetime.timedelta(seconds=DIST_TIMEOUT_S),
        )
    return ctx, local_world


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
        cfg = load_config(args.config)
        if args.dry_run:
            out.emit("plan", **make_plan(cfg))
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
        out.error("runtime", f"{type(e).__name__}: {e}", retryable=True)
        return EXIT_RUNTIME
    finally:
        if distributed:
            _destroy()


def _destroy():
    try:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # teardown after an error must not mask the exit code
        pass


if __name__ == "__main__":
    sys.exit(main())
