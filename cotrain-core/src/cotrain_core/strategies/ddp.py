"""ddp: DistributedDataParallel with gradient accumulation (no_sync on all but the last micro-batch).

Gradient all-reduce payloads are counted by a DDP communication hook (bucket bytes per rank).
"""

import contextlib

from .base import Strategy


class DDPStrategy(Strategy):
    name = "ddp"

    def __init__(self, model, ctx, group=None):
        """group: the ranks to replicate over (a DiLoCo island); None = all ranks."""
        super().__init__(model, ctx)
        if ctx.distributed:
            from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
            from torch.nn.parallel import DistributedDataParallel

            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.model = DistributedDataParallel(
                model, device_ids=ids, broadcast_buffers=False, process_group=group
            )

            def counting_allreduce(state, bucket):
                self.allreduce_bytes += bucket.buffer().numel() * bucket.buffer().element_size()
                return default_hooks.allreduce_hook(state, bucket)

            self.model.register_comm_hook(group, counting_allreduce)  # state: the group (None = all)

    def accumulate(self, last: bool):
        if self.ctx.distributed and not last:
            return self.model.no_sync()
        return contextlib.nullcontext()
