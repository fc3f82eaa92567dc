"""fsdp: FSDP2 (`torch.distributed.fsdp.fully_shard`) per decoder/encoder layer, then the root.

Works on CPU with gloo in torch >= 2.6 (tested with 2.15). Parameters become DTensors sharded
over the ranks; checkpoints gather the full model and optimizer state on rank 0.
"""

import contextlib

from .base import Strategy, check_loaded


def _layers(model):
    for path in ("model.layers", "bert.encoder.layer"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return list(obj)
        except AttributeError:
            continue
    return []


class FSDPStrategy(Strategy):
    name = "fsdp"

    def __init__(self, model, ctx):
        super().__init__(model, ctx)
        self.sharded = ctx.distributed
        if self.sharded:
            try:
                from torch.distributed.fsdp import fully_shard
            except ImportError as e:  # pragma: no cover - old torch
                from ..config import ConfigError

                raise ConfigError(
                    f"distributed.strategy: fsdp needs torch.distributed.fsdp.fully_shard ({e})"
                ) from None
            for layer in _layers(model):
                fully_shard(layer)
            fully_shard(model)
        self.optimizer = None

    def accumulate(self, last: bool):
        if self.sharded:
            self.module.set_requires_gradient_sync(last)
        return contextlib.nullcontext()

    def grad_norm_and_clip(self, max_norm: float) -> float:
        import torch

        norm = torch.nn.utils.clip_grad_norm_(
            self.module.parameters(), max_norm if max_norm > 0 else float("inf")
        )
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        return float(norm)

    def _options(self, **kw):
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, cpu_offload=True, **kw)

    def model_state_dict(self):
        if not self.sharded:
            return super().model_state_dict()
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        state = get_model_state_dict(self.module, options=self._options())  # collective
        return state if self.ctx.rank == 0 else None

    def load_model_state_dict(self, state):
        if not self.sharded:
            return super().load_model_state_dict(state)
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        opts = self._options(broadcast_from_rank0=True, strict=False)
        result = set_model_state_dict(self.module, state, options=opts)
        if self.ctx.rank == 0:
            check_loaded(self.module, result.missing_keys, result.unexpected_keys)

    def optimizer_state_dict(self, optimizer):
        if not self.sharded:
            return super().optimizer_state_dict(optimizer)
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        state = get_optimizer_state_dict(self.module, optimizer, options=self._options())  # collective
        return state if self.ctx.rank == 0 else None

    def load_optimizer_state_dict(self, optimizer, state):
        if not self.sharded:
            return super().load_optimizer_state_dict(optimizer, state)
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        set_optimizer_state_dict(
            self.module, optimizer, state or {}, options=self._options(broadcast_from_rank0=True)
        )
