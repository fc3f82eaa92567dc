"""fsdp: FSDP2 (`torch.distributed.fsdp.fully_shard`) per decoder/encoder layer, then the root.

Works on CPU with gloo in torch >= 2.6 (tested with 2.15). Parameters become DTensors sharded
over the ranks. build_sharded() builds the model on the meta device on every rank, shards it and
materialises only each rank's shards, filled from rank 0's ordinary CPU init (so the weights equal
a single process's). Checkpoints are sharded (torch.distributed.checkpoint, checkpointing.py); the
full state is gathered on rank 0 only for the final export (model_state_dict). Under
model.precision bf16/fp16 the layers gather and compute in that dtype and reduce gradients in fp32.
"""

import contextlib

from .base import Strategy, check_loaded, layers


def _shard(model, precision: str = "fp32", mesh=None) -> None:
    """fully_shard each layer, then the root, over mesh (None: all ranks). bf16/fp16: gather and
    compute in that dtype, reduce-scatter gradients in fp32; the sharded fp32 parameters stay the
    optimizer's (docs/decisions.md)."""
    try:
        import torch
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    except ImportError as e:  # pragma: no cover - old torch
        from ..config import ConfigError

        raise ConfigError(
            f"distributed.strategy: fsdp needs torch.distributed.fsdp.fully_shard ({e})"
        ) from None
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    mp = MixedPrecisionPolicy(param_dtype=low, reduce_dtype=torch.float32 if low else None)
    for layer in layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)


def build_sharded(build, ctx, precision: str = "fp32"):
    """The model of build() (seeded by the caller), sharded over the ranks without any rank holding
    it in full on its device: every rank builds it on the meta device and shards it, allocates its
    shards (to_empty) and receives their values from rank 0, the only rank that runs the ordinary
    init (on CPU). Buffers outside the state dict (rotary inv_freq, BERT's position ids) are
    broadcast from rank 0 too. Tied weights stay tied: tying happens on the meta module, before
    sharding, and FSDP keeps one parameter for both names."""
    import torch
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    full = build() if ctx.rank == 0 else None
    with torch.device("meta"):
        model = build()
    _shard(model, precision)
    model.to_empty(device=ctx.device)
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(model, full.state_dict() if full is not None else {}, options=options)
    persistent = set(model.state_dict())
    for name, buf in model.named_buffers():
        if name not in persistent:
            if full is not None:
                buf.copy_(full.get_buffer(name))
            dist.broadcast(buf, src=0)
    return model


class FSDPStrategy(Strategy):
    name = "fsdp"

    def __init__(self, model, ctx, precision="fp32", mesh=None):
        """mesh: the ranks to shard over (a DiLoCo island's DeviceMesh); None = all ranks."""
        from torch.distributed.fsdp import FSDPModule

        super().__init__(model, ctx)
        self.sharded = ctx.distributed if mesh is None else mesh.size() > 1
        if self.sharded and not isinstance(model, FSDPModule):  # build_sharded already sharded it
            _shard(model, precision, mesh)
        self.optimizer = None

    def accumulate(self, last: bool):
        if self.sharded:
            self.module.set_requires_gradient_sync(last)
        return contextlib.nullcontext()

    def grad_norm_and_clip(self, max_norm: float):
        import torch

        norm = torch.nn.utils.clip_grad_norm_(
            self.module.parameters(), max_norm if max_norm > 0 else float("inf")
        )
        return norm.full_tensor() if hasattr(norm, "full_tensor") else norm

    def _options(self, **kw):
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, cpu_offload=True, **kw)

    def model_state_dict(self):
        if not self.sharded:
            return super().model_state_dict()
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        state = get_model_state_dict(self.module, options=self._options())  # collective
        return state if self.ctx.rank == 0 else None

    # full-state loads: format-1 checkpoints (format 2 is read shard by shard in checkpointing.py)
    def load_model_state_dict(self, state):
        if not self.sharded:
            return super().load_model_state_dict(state)
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        opts = self._options(broadcast_from_rank0=True, strict=False)
        result = set_model_state_dict(self.module, state, options=opts)
        if self.ctx.rank == 0:
            check_loaded(self.module, result.missing_keys, result.unexpected_keys)

    def load_optimizer_state_dict(self, optimizer, state):
        if not self.sharded:
            return super().load_optimizer_state_dict(optimizer, state)
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        set_optimizer_state_dict(
            self.module, optimizer, state or {}, options=self._options(broadcast_from_rank0=True)
        )
