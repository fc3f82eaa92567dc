"""diloco: local inner steps, then an outer Nesterov-SGD step on averaged pseudo-gradients.

Every `inner_steps` steps (and after the last step): pseudo_grad = global - local (fp32, on CPU),
divided by the world size, cast to `pseudo_grad_dtype`, all-reduced (SUM) as one flat buffer,
set as .grad of the CPU copy of the global weights; SGD(outer_lr, outer_momentum, nesterov)
steps on CPU and the new global weights are copied into the local model. No gradient is
synchronised during inner steps. Training stops and checkpoints only at outer-step boundaries.
"""

import time

from .base import Strategy

_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # distributed.diloco.pseudo_grad_dtype


class DiLoCoStrategy(Strategy):
    name = "diloco"
    optimizer_per_rank = True
    sync_metrics_every_step = False

    def __init__(self, model, ctx, cfg):
        import torch

        super().__init__(model, ctx)
        self.torch = torch
        self.inner_steps = cfg.inner_steps
        self.dtype = getattr(torch, _DTYPES[cfg.pseudo_grad_dtype])
        self.params = [p for p in model.parameters() if p.requires_grad]
        flat = torch.cat([p.detach().reshape(-1).float().cpu() for p in self.params])
        self.global_weights = torch.nn.Parameter(flat, requires_grad=True)  # fp32, CPU
        self.outer = torch.optim.SGD(
            [self.global_weights],
            lr=cfg.outer_lr,
            momentum=cfg.outer_momentum,
            nesterov=cfg.nesterov,
        )
        self.outer_step = 0

    def boundary(self, step, total_steps):
        return step % self.inner_steps == 0 or step >= total_steps

    def payload_bytes(self) -> int:
        return self.global_weights.numel() * self.torch.tensor([], dtype=self.dtype).element_size()

    def after_step(self, step, total_steps):
        if not self.boundary(step, total_steps):
            return None
        torch = self.torch
        start = time.perf_counter()
        with torch.no_grad():
            local = torch.cat([p.detach().reshape(-1).float().cpu() for p in self.params])
            pseudo = (self.global_weights.detach() - local).div_(self.ctx.world_size)
            sent = 0
            if self.ctx.distributed:
                import torch.distributed as dist

                buf = pseudo.to(self.dtype)
                dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                sent = buf.numel() * buf.element_size()
                pseudo = buf.float()
            self.allreduce_bytes += sent
            self.global_weights.grad = pseudo
            self.outer.step()
            self.outer.zero_grad(set_to_none=True)
            self._copy_global_into_model()
        self.outer_step += 1
        return dict(
            outer_step=self.outer_step,
            step=step,
            participants=self.ctx.world_size,
            bytes=sent,
            seconds=round(time.perf_counter() - start, 6),
        )

    def _copy_global_into_model(self):
        offset = 0
        for p in self.params:
            n = p.numel()
            p.data.copy_(self.global_weights.data[offset : offset + n].view_as(p))
            offset += n

    def extra_state_dict(self):
        return {
            "outer_optimizer": self.outer.state_dict(),
            "global_weights": self.global_weights.detach().clone(),
            "outer_step": self.outer_step,
        }

    def load_extra_state_dict(self, state):
        self.global_weights.data.copy_(state["global_weights"])
        self.outer.load_state_dict(state["outer_optimizer"])
        self.outer_step = state["outer_step"]
        self._copy_global_into_model()
