"""A Trainer's checkpoints: what each rank saves, written in the background, and restoring all of it
(checkpoint.py is the format).

ckpt = checkpointing.Checkpointer(trainer)        # every rank, after the strategy and optimizer exist
ckpt.save(step, last_loss, eval_loss)            # every rank; returns while the files are written
ckpt.wait()                                      # the save in flight is written, hashed and committed
step, last_loss = ckpt.restore(resume)           # --resume DIR, else the newest valid one

The model and (ddp/fsdp) optimizer go through torch.distributed.checkpoint.async_save: each rank
stages its own shards to CPU memory and returns to training while a background thread writes them;
a committer thread then waits for that write, hashes the files this rank wrote and gathers the
hashes on rank 0, which writes the manifest, renames step-<n>.tmp-* into place, prunes and emits
`checkpoint`. At most one save is in flight: the next save (and the final or stop checkpoint)
waits for it first. The background collectives use a gloo group of their own, so they never
interleave with the training's collectives.
"""

import os
import random
import threading
import warnings
from pathlib import Path

import torch

from . import checkpoint
from .config import ConfigError

# one process: DCP says on every save and load that it runs without torch.distributed, as intended
warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")


def run_meta(trainer) -> dict:
    cfg = trainer.cfg
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


def rng_state(trainer) -> dict:
    rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if trainer.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(trainer.device)
    return rng


class Checkpointer:
    def __init__(self, trainer):
        import torch.distributed as dist

        self.trainer = trainer
        self.token = trainer.dist.broadcast(os.getpid())  # names the shared tmp dir
        self.group = dist.new_group(backend="gloo") if trainer.ctx.distributed else None
        self._thread, self._error = None, None

    def _sharded_state(self) -> dict:
        """{"model", "optimizer"} as torch.distributed.checkpoint saves them (DTensor shards under fsdp)."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

        strategy = self.trainer.strategy
        state = {"model": get_model_state_dict(strategy.module)}
        if not strategy.optimizer_per_rank:  # collective under fsdp
            state["optimizer"] = get_optimizer_state_dict(strategy.module, self.trainer.optimizer)
        return state

    def save(self, step: int, last_loss: float | None, eval_loss: float | None = None) -> None:
        """Start writing step-<n>/ from every rank; the commit (rank 0: manifest, rename, prune, then
        `checkpoint` and a `checkpoint_deleted` per pruned one) follows when every rank wrote its files."""
        import torch.distributed.checkpoint as dcp

        self.wait()
        trainer = self.trainer
        cfg, rank, strategy = trainer.cfg, trainer.ctx.rank, trainer.strategy
        root = Path(cfg.checkpoint.output_path).resolve()
        if rank == 0:
            checkpoint.begin(root, step, self.token)
        trainer.dist.barrier()
        tmp = root / f"step-{step}.tmp-{self.token}"
        state = None
        if rank == 0:
            state = {
                "step": step,
                "epoch": (step - 1) // trainer.steps_per_epoch + 1,
                "batch_in_epoch": (step - 1) % trainer.steps_per_epoch + 1,
                "last_loss": last_loss,
                "strategy": strategy.extra_state_dict(),
                "meta": run_meta(trainer),
            }
        rank_state = {
            "rng": rng_state(trainer),
            "scaler": trainer.scaler.state_dict(),
            "optimizer": strategy.optimizer_state_dict(trainer.optimizer)
            if strategy.optimizer_per_rank
            else None,
            "strategy": strategy.rank_state_dict(),  # DiLoCo: this rank's shard of the outer state
        }
        written = checkpoint.write_state(tmp, rank, state, rank_state)
        future = dcp.async_save(self._sharded_state(), checkpoint_id=str(tmp), process_group=self.group)
        args = (future, tmp, root, step, written, eval_loss)
        self._thread = threading.Thread(target=self._commit, args=args, name="checkpoint", daemon=True)
        self._thread.start()

    def _commit(self, future, tmp, root, step, written, eval_loss) -> None:
        import torch.distributed as dist

        try:
            future.result()
            rank = self.trainer.ctx.rank
            mine = written + [p.name for p in tmp.glob(f"__{rank}_*.distcp")]
            hashes = checkpoint.hash_files(tmp, mine)
            if self.group is not None:
                gathered = [None] * dist.get_world_size(self.group) if rank == 0 else None
                dist.gather_object(hashes, gathered, dst=0, group=self.group)
                hashes = {k: v for part in gathered or [] for k, v in part.items()}
            if rank == 0:
                self._publish(tmp, root, step, hashes, eval_loss)
        except BaseException as e:  # re-raised on the training thread by wait()
            self._error = e

    def _publish(self, tmp, root, step, hashes, eval_loss) -> None:
        cfg, out = self.trainer.cfg, self.trainer.out
        c = cfg.checkpoint
        path, nbytes, deleted = checkpoint.commit(
            root, tmp, step, cfg.world_size, c.keep_last, eval_loss, c.keep_best, hashes
        )
        sha = checkpoint._sha256(path / "manifest.json")
        out.emit("checkpoint", step=step, path=str(path), bytes=nbytes, sha256=sha, eval_loss=eval_loss)
        for old_step, old_path in deleted:
            out.emit("checkpoint_deleted", step=old_step, path=str(old_path))

    def wait(self) -> None:
        """Block until the save in flight (if any) is committed; raise what it failed with."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            self.trainer.dist.barrier()  # rank 0 committed before any rank goes on
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _resume_path(self, resume: str | None) -> Path | None:
        trainer = self.trainer
        if resume:
            path = Path(resume)
            try:
                checkpoint.verify(path)
            except checkpoint.CheckpointError as e:
                raise ConfigError(f"--resume: not a valid checkpoint: {e}") from None
            return path.resolve()
        found = None
        if trainer.ctx.rank == 0:
            found = checkpoint.find_latest(trainer.cfg.checkpoint.output_path, trainer.out.log)
            found = str(found) if found else None
        found = trainer.dist.broadcast(found)
        return Path(found) if found else None

    def restore(self, resume: str | None) -> tuple[int | None, float | None]:
        """Load --resume DIR, else the newest valid checkpoint in output_path. Returns (step, last loss)."""
        trainer = self.trainer
        path = self._resume_path(resume)
        if path is None:
            return None, None
        state = checkpoint.load_state(path)
        meta, mine = state["meta"], run_meta(trainer)
        _check_meta(path, meta, mine, trainer)
        rank, strategy = trainer.ctx.rank, trainer.strategy
        rank_state = _rank_state(path, rank, meta.get("world_size", mine["world_size"]), trainer)
        if checkpoint.manifest_format(path) == 1:
            strategy.load_model_state_dict(checkpoint.load_model(path))
            opt = rank_state["optimizer"] if strategy.optimizer_per_rank else state["optimizer"]
            strategy.load_optimizer_state_dict(trainer.optimizer, opt)
        else:
            self._load_sharded(path)
            if strategy.optimizer_per_rank:
                strategy.load_optimizer_state_dict(trainer.optimizer, rank_state["optimizer"])
        strategy.load_extra_state_dict(state.get("strategy") or {})
        strategy.load_rank_state_dict(rank_state.get("strategy") or {})
        trainer.scaler.load_state_dict(rank_state["scaler"])
        if "rng" in rank_state:
            torch.set_rng_state(rank_state["rng"]["torch"])
            random.setstate(rank_state["rng"]["python"])
            if "cuda" in rank_state["rng"] and trainer.device.type == "cuda":
                torch.cuda.set_rng_state(rank_state["rng"]["cuda"], trainer.device)
        trainer.out.log(f"resumed from {path} at step {state['step']}")
        return state["step"], state["last_loss"]

    def _load_sharded(self, path: Path) -> None:
        """Read this rank's shards of the model (and optimizer) in place: DCP reshards to this world."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        strategy, optimizer = self.trainer.strategy, self.trainer.optimizer
        state = self._sharded_state()  # the shapes to fill (an empty optimizer is initialised first)
        dcp.load(state, checkpoint_id=str(path), process_group=self.group)
        set_model_state_dict(strategy.module, state["model"])
        if "optimizer" in state:
            set_optimizer_state_dict(strategy.module, optimizer, state["optimizer"])


def _rank_state(path: Path, rank: int, saved_world: int, trainer) -> dict:
    """This rank's file; a rank the checkpoint did not have (more ranks than when it was written)
    takes rank 0's grad scaler and keeps the RNG seeded from train.seed and its rank."""
    if rank < saved_world:
        return checkpoint.load_rank_state(path, rank)
    trainer.out.log(f"rank {rank}: {path} was written by {saved_world} ranks; RNG seeded from train.seed")
    return {"scaler": checkpoint.load_rank_state(path, 0)["scaler"], "optimizer": None}


def _check_meta(path, meta, mine, trainer) -> None:
    saved_world = meta.get("world_size", mine["world_size"])
    if saved_world != mine["world_size"] and trainer.strategy.optimizer_per_rank:
        raise ConfigError(
            f"distributed.nodes: checkpoint {path} was written by {saved_world} ranks and this config has "
            f"nodes x gpus_per_node = {mine['world_size']}; {mine['strategy']} keeps state per rank that "
            "cannot be remapped (set distributed.nodes / gpus_per_node to match, or start a new "
            "checkpoint.output_path)"
        )
    for key, name in (
        ("model_type", "model.type"),
        ("model_size", "model.size"),
        ("optimizer", "train.optimizer"),
        ("strategy", "distributed.strategy"),
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
        trainer.out.log(
            f"checkpoint {path} used other seq_length/batch_size/seed; data order differs", "warning"
        )
