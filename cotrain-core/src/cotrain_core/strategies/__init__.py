"""Training strategies over torch.distributed: plain/DDP, FSDP2 and DiLoCo.

    model = strategies.build_model(cfg, vocab_size, dist_ctx)  # seeded init; fsdp: sharded from meta
    strategy = strategies.make(name, model, dist_ctx, diloco_cfg, precision)   # precision: fsdp's
    model = strategy.model                             # what the training loop calls forward on
    with strategy.accumulate(last_micro_batch): loss.backward()
    syncs = strategy.after_step(step, total_steps)     # DiLoCo: [sync info] at outer steps, else []

Each strategy also says where training may stop or checkpoint (`boundary`) and how its state is
gathered for a checkpoint. World size 1 degenerates to the plain loop (ddp/fsdp) or a one-worker
DiLoCo outer step.
"""

from .base import DistContext, Strategy


def build_model(cfg, vocab_size: int, ctx: DistContext):
    """The model on ctx.device with the init of models.build_model (seed torch first) on every rank,
    with model.activation_checkpointing / model.compile applied (speed.py). fsdp with several ranks:
    built on the meta device and sharded; only the shards are allocated."""
    from .. import models, speed

    def build():
        return speed.prepare_model(models.build_model(cfg, vocab_size), cfg.model)

    if cfg.distributed.strategy == "fsdp" and ctx.distributed:
        from .fsdp import build_sharded

        return build_sharded(build, ctx, cfg.model.precision)
    return build().to(ctx.device)


def make(name: str, model, ctx: DistContext, diloco_cfg=None, precision: str = "fp32") -> Strategy:
    if name == "fsdp":
        from .fsdp import FSDPStrategy

        return FSDPStrategy(model, ctx, precision)
    if name == "diloco":
        from .diloco import DiLoCoStrategy

        return DiLoCoStrategy(model, ctx, diloco_cfg, precision)
    from .ddp import DDPStrategy

    return DDPStrategy(model, ctx)


__all__ = ["DistContext", "Strategy", "build_model", "make"]
