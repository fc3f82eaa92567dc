"""Shared strategy interface and the distributed context."""

import contextlib
from dataclasses import dataclass


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: object = None  # torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


class Strategy:
    """Plain single-process training; subclasses add communication."""

    name = "plain"
    #: inner optimizer state differs per rank (saved in each rank's file, not only rank 0's)
    optimizer_per_rank = False
    #: per-step metrics/stop flag are all-reduced every step (False: only at outer-step boundaries)
    sync_metrics_every_step = True
    #: factor on the learning-rate schedule of the (inner) optimizer
    inner_lr_scale = 1.0
    #: parameters are DTensor shards (the final model is gathered through model_state_dict)
    sharded = False

    def __init__(self, model, ctx: DistContext):
        self.ctx = ctx
        self.module = model  # the unwrapped model (for saving, eval, parameters)
        self.model = model  # what forward is called on
        self.allreduce_bytes = 0  # gradient / pseudo-gradient payload all-reduced by this rank

    def parameters(self):
        return self.module.parameters()

    def accumulate(self, last: bool):
        """Context for the backward of one micro-batch; gradients sync only on the last one."""
        return contextlib.nullcontext()

    def grad_norm_and_clip(self, max_norm: float):
        """Clip the gradients; returns their total norm as a 0-dim tensor (read later: no host sync)."""
        import torch

        return torch.nn.utils.clip_grad_norm_(
            self.module.parameters(), max_norm if max_norm > 0 else float("inf")
        )

    def boundary(self, step: int, total_steps: int) -> bool:
        """May training stop or checkpoint after this step?"""
        return True

    def after_step(self, step: int, total_steps: int) -> list[dict]:
        """Communication after the inner optimizer step (DiLoCo's outer steps): one `sync` event's
        fields per outer step done."""
        return []

    # --- checkpoint state -------------------------------------------------------------------
    def model_state_dict(self) -> dict | None:
        """Full model weights on rank 0 (None elsewhere)."""
        if self.ctx.rank != 0:
            return None
        return {k: v.detach().cpu() for k, v in self.module.state_dict().items()}

    def load_model_state_dict(self, state: dict) -> None:
        result = self.module.load_state_dict(state, strict=False)
        check_loaded(self.module, result.missing_keys, result.unexpected_keys)

    def optimizer_state_dict(self, optimizer) -> dict | None:
        return optimizer.state_dict() if (self.optimizer_per_rank or self.ctx.rank == 0) else None

    def load_optimizer_state_dict(self, optimizer, state: dict) -> None:
        optimizer.load_state_dict(state)

    def extra_state_dict(self) -> dict:
        """Strategy state saved by rank 0 (DiLoCo: outer optimizer and global weights)."""
        return {}

    def load_extra_state_dict(self, state: dict) -> None:
        pass

    def rank_state_dict(self) -> dict:
        """Strategy state that differs per rank, saved in each rank's file (DiLoCo: its shard of the
        outer state)."""
        return {}

    def load_rank_state_dict(self, state: dict) -> None:
        pass


def layers(model) -> list:
    """The decoder (llama) or encoder (bert) layers of a transformers model, in order."""
    for path in ("model.layers", "bert.encoder.layer"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return list(obj)
        except AttributeError:
            continue
    return []


def tied_names(module) -> set[str]:
    """State-dict names that alias an earlier tensor (saved once in a checkpoint)."""
    seen, tied = set(), set()
    for name, t in module.state_dict(keep_vars=True).items():
        key = id(t)
        if key in seen:
            tied.add(name)
        seen.add(key)
    return tied


def check_loaded(module, missing, unexpected) -> None:
    missing = set(missing) - tied_names(module)
    if missing or unexpected:
        raise RuntimeError(
            f"checkpoint weights do not fit the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    if hasattr(module, "tie_weights"):
        module.tie_weights()
