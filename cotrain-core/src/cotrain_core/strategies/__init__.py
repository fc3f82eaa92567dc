"""Training strategies over torch.distributed: plain/DDP, FSDP2 and DiLoCo.

    strategy = strategies.make(cfg, model, dist_ctx)   # dist_ctx: rank, world_size, device, group
    model = strategy.model                             # what the training loop calls forward on
    with strategy.accumulate(last_micro_batch): loss.backward()
    info = strategy.after_step(step, total_steps)      # DiLoCo: outer step -> sync info, else None

Each strategy also says where training may stop or checkpoint (`boundary`) and how its state is
gathered for a checkpoint. World size 1 degenerates to the plain loop (ddp/fsdp) or a one-worker
DiLoCo outer step.
"""

from .base import DistContext, Strategy


def make(name: str, model, ctx: DistContext, diloco_cfg=None) -> Strategy:
    if name == "fsdp":
        from .fsdp import FSDPStrategy

        return FSDPStrategy(model, ctx)
    if name == "diloco":
        from .diloco import DiLoCoStrategy

        return DiLoCoStrategy(model, ctx, diloco_cfg)
    from .ddp import DDPStrategy

    return DDPStrategy(model, ctx)


__all__ = ["DistContext", "Strategy", "make"]
