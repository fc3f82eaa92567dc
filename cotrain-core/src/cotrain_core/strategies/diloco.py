"""diloco: islands of ranks train replicas with inner steps; outer Nesterov-SGD steps between islands.

Islands. The world is `islands x island_size` ranks; island i is ranks i*s .. i*s+s-1 (one node by
default). Each island trains one replica with the inner strategy over its own ranks (fsdp: sharded
inside the island; ddp: replicated, gradients all-reduced inside the island); no gradient crosses
islands. The outer state (fp32 global weights + outer momentum, CPU) exists once per island, split
over its ranks: under fsdp a rank holds the local shards of its DTensor parameters, under ddp chunk
r of the flat parameter vector (new weights are all-gathered inside the island). It is per-rank
checkpoint state (rank_state_dict). Islands of one rank: every rank its own replica.

Outer step of a fragment. Each rank takes the pseudo-gradient of its shard of the fragment,
(global - local) / islands in fp32, and reduces it with the ranks that hold the same shard in the
other islands (the "replica" dimension of a 2-D DeviceMesh [islands, island_size]): an all-reduce
(SUM) in `pseudo_grad_dtype`, or with `quantization` int8/fp8 an all-gather of codes and
per-chunk scales summed in fp32 (quantize.py); the quantization error is the rank's residual,
added to its next pseudo-gradient (error feedback). SGD(outer_lr, outer_momentum, nesterov) steps
that shard of the global weights; the model's shard becomes mixing * global + (1 - mixing) * local.

Streaming (Douillard et al. 2025). The parameters (in model order) form `fragments` contiguous
groups of about equal size; fragment f starts its reduction at steps where
(step - f * inner_steps // fragments) % inner_steps == 0 and applies it `overlap_steps` steps
later, the collective running asynchronously meanwhile. After the last step every fragment is
applied. With one fragment, no overlap, mixing 1 and fp32 this is plain DiLoCo. A checkpoint
waits for the reductions in flight and saves their results, and each rank's shard of its local
weights (islands differ between their fragments' syncs), so resume is exact. Training stops and
checkpoints only at multiples of inner_steps and after the last step.
"""

import math
import time

from .base import Strategy

_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # distributed.diloco.pseudo_grad_dtype
_QUANTIZED = ("int8", "fp8")


class DiLoCoStrategy(Strategy):
    name = "diloco"
    optimizer_per_rank = True
    sync_metrics_every_step = False

    def __init__(self, model, ctx, cfg, precision="fp32"):
        import torch

        super().__init__(model, ctx)
        self.torch = torch
        self.inner_steps, self.overlap, self.mixing = cfg.inner_steps, cfg.overlap_steps, cfg.mixing
        self.inner_lr_scale = cfg.inner_lr_scale
        self.kind = cfg.pseudo_grad_dtype if cfg.quantization == "none" else cfg.quantization
        self.island_size = cfg.island_size
        self.islands = ctx.world_size // cfg.island_size
        self.shard = ctx.rank % cfg.island_size  # this rank's position inside its island
        self.replica_group = self.island_group = None
        self.inner = Strategy(model, ctx)  # islands of one rank: a plain local loop
        if ctx.distributed:
            self._make_groups_and_inner(model, ctx, cfg.inner_strategy, precision)
        self.model, self.sharded = self.inner.model, self.inner.sharded
        self.chunked = cfg.island_size > 1 and not self.sharded  # ddp inside an island
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.fragments = _split(self.params, cfg.fragments)
        self.offsets = [f * cfg.inner_steps // cfg.fragments for f in range(cfg.fragments)]
        self.streaming = cfg.fragments > 1 or cfg.overlap_steps > 0 or cfg.mixing < 1
        self.global_weights = [
            torch.nn.Parameter(self._local(f), requires_grad=True) for f in range(len(self.fragments))
        ]  # fp32, CPU: this rank's shard of each fragment
        self.residuals = (
            [torch.zeros_like(g) for g in self.global_weights] if self.kind in _QUANTIZED else None
        )
        self.outer = torch.optim.SGD(
            self.global_weights,
            lr=cfg.outer_lr,
            momentum=cfg.outer_momentum,
            nesterov=cfg.nesterov and cfg.outer_momentum > 0,  # torch refuses Nesterov without momentum
        )
        self.outer_step = 0
        self.pending = {}  # fragment -> [apply step, started step, work or reduced tensor, bytes, seconds]

    def _make_groups_and_inner(self, model, ctx, inner_strategy, precision):
        from torch.distributed.device_mesh import init_device_mesh

        mesh = init_device_mesh(
            ctx.device.type, (self.islands, self.island_size), mesh_dim_names=("replica", "island")
        )
        self.replica_group = mesh.get_group("replica")  # the same shard in every island
        self.island_group = mesh.get_group("island")
        if self.island_size == 1:
            return
        if inner_strategy == "fsdp":
            from .fsdp import FSDPStrategy

            self.inner = FSDPStrategy(model, ctx, precision, mesh=mesh["island"])
        else:
            from .ddp import DDPStrategy

            self.inner = DDPStrategy(model, ctx, self.island_group)

    # --- the inner strategy does the step ------------------------------------------------------
    def accumulate(self, last):
        return self.inner.accumulate(last)

    def grad_norm_and_clip(self, max_norm):
        return self.inner.grad_norm_and_clip(max_norm)

    def boundary(self, step, total_steps):
        return step % self.inner_steps == 0 or step >= total_steps

    # --- this rank's shard of a fragment -------------------------------------------------------
    def _views(self, f: int) -> list:
        """This rank's tensors of fragment f: local DTensor shards, or the parameters."""
        start, end = self.fragments[f]
        with self.torch.no_grad():
            return [p.to_local() if self.sharded else p for p in self.params[start:end]]

    def _local(self, f: int):
        """This rank's shard of fragment f of the current model, one flat fp32 CPU vector."""
        flat = self.torch.cat([v.detach().reshape(-1).float().cpu() for v in self._views(f)])
        if not self.chunked:
            return flat
        chunk = math.ceil(flat.numel() / self.island_size)
        flat = self.torch.nn.functional.pad(flat, (0, chunk * self.island_size - flat.numel()))
        return flat[self.shard * chunk : (self.shard + 1) * chunk].clone()

    def _write_back(self, f: int, shard) -> None:
        """Set this rank's shard of fragment f (under ddp: every rank's chunk, gathered in the island)."""
        torch = self.torch
        if self.chunked:
            import torch.distributed as dist

            parts = [torch.empty_like(shard) for _ in range(self.island_size)]
            dist.all_gather(parts, shard, group=self.island_group)
            shard = torch.cat(parts)
        offset = 0
        with torch.no_grad():
            for v in self._views(f):
                n = v.numel()
                v.copy_(shard[offset : offset + n].view_as(v))
                offset += n

    # --- outer steps --------------------------------------------------------------------------------
    def after_step(self, step, total_steps):
        """Start the fragments due at this step, apply those due; after the last step apply all.
        Returns one `sync` dict per fragment applied."""
        last = step >= total_steps
        for f, offset in enumerate(self.offsets):
            due = (step - offset) % self.inner_steps == 0
            if f not in self.pending and (due or last):
                self._start(f, step)
        applied = []
        for f in sorted(self.pending):
            if self.pending[f][0] <= step or last:
                applied.append(self._apply(f, step))
        return applied

    def _start(self, f: int, step: int) -> None:
        torch = self.torch
        start = time.perf_counter()
        with torch.no_grad():
            pseudo = (self.global_weights[f].detach() - self._local(f)).div_(self.islands)
            sent, work = 0, pseudo
            if self.kind in _QUANTIZED:
                from . import quantize

                pseudo += self.residuals[f]  # error feedback
                n = pseudo.numel()
                codes, scales = quantize.quantize(pseudo, self.kind)
                work = quantize.dequantize(codes, scales, self.kind, n)
                self.residuals[f] = pseudo - work
                if self.islands > 1:
                    work = quantize.AllGather(codes, scales, self.replica_group, self.kind, n)
                    sent = codes.numel() + scales.numel() * scales.element_size()
            elif self.islands > 1:
                import torch.distributed as dist

                buf = pseudo.to(getattr(torch, _DTYPES[self.kind]))
                handle = dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=self.replica_group, async_op=True)
                work = _Reduce(handle, buf)
                sent = buf.numel() * buf.element_size()
        self.allreduce_bytes += sent
        self.pending[f] = [step + self.overlap, step, work, sent, time.perf_counter() - start]

    def _apply(self, f: int, step: int) -> dict:
        torch = self.torch
        _, started, work, sent, seconds = self.pending.pop(f)
        start = time.perf_counter()
        with torch.no_grad():
            g = self.global_weights[f]
            g.grad = _result(work)
            self.outer.step()  # only g has a gradient
            g.grad = None
            target = g.data
            if self.mixing < 1:
                target = g.data * self.mixing + self._local(f) * (1 - self.mixing)
            self._write_back(f, target)
        self.outer_step += 1
        sync = dict(outer_step=self.outer_step, step=step, participants=self.islands, bytes=sent)
        if len(self.fragments) > 1 or self.overlap:
            sync.update(fragment=f, started_step=started)
        return {**sync, "seconds": round(seconds + time.perf_counter() - start, 6)}

    # --- checkpoint state -------------------------------------------------------------------------
    def model_state_dict(self):
        return self.inner.model_state_dict()

    def load_model_state_dict(self, state):
        self.inner.load_model_state_dict(state)

    def optimizer_state_dict(self, optimizer):
        """This rank's inner optimizer state; DTensor state (fsdp) as its local shards."""
        state = optimizer.state_dict()
        local = {
            i: {k: v.to_local() if hasattr(v, "to_local") else v for k, v in s.items()}
            for i, s in state["state"].items()
        }
        return {**state, "state": local}

    def load_optimizer_state_dict(self, optimizer, state):
        params = [p for group in optimizer.param_groups for p in group["params"]]
        shaped = {i: {k: _like(v, params[i]) for k, v in s.items()} for i, s in state["state"].items()}
        optimizer.load_state_dict({**state, "state": shaped})

    def extra_state_dict(self):
        return {"outer_step": self.outer_step}

    def load_extra_state_dict(self, state):
        self.outer_step = state["outer_step"]

    def rank_state_dict(self):
        """This rank's shard of the outer state; reductions in flight are waited for and saved."""
        for entry in self.pending.values():
            entry[2] = _result(entry[2])
        state = {
            "outer_optimizer": self.outer.state_dict(),
            "global_weights": [g.detach().clone() for g in self.global_weights],
            "residuals": self.residuals,
            "pending": {f: list(entry) for f, entry in self.pending.items()},
        }
        if self.streaming:  # the islands' local weights differ here: each rank keeps its shard
            state["local"] = [self._local(f) for f in range(len(self.fragments))]
        return state

    def load_rank_state_dict(self, state):
        if "global_weights" not in state:
            from ..config import ConfigError

            raise ConfigError(
                "distributed.strategy: the checkpoint has no per-rank DiLoCo outer state (written by "
                "an older trainer); start a new checkpoint.output_path"
            )
        for g, saved in zip(self.global_weights, state["global_weights"], strict=True):
            g.data.copy_(saved)
        self.outer.load_state_dict(state["outer_optimizer"])
        self.residuals = state["residuals"]
        self.pending = {f: list(entry) for f, entry in state["pending"].items()}
        for f in range(len(self.fragments)):
            self._write_back(f, state["local"][f] if self.streaming else self.global_weights[f].data)


class _Reduce:
    """An async all-reduce in flight; result() is the fp32 sum."""

    def __init__(self, handle, buf):
        self.handle, self.buf = handle, buf

    def result(self):
        self.handle.wait()
        return self.buf.float()


def _result(work):
    """The reduced fp32 pseudo-gradient of a reduction in flight, or one already waited for."""
    return work.result() if hasattr(work, "result") else work


def _split(params, n: int) -> list[tuple[int, int]]:
    """n contiguous [start, end) ranges of the parameter list with about equal element counts."""
    if n > len(params):
        from ..config import ConfigError

        raise ConfigError(f"distributed.diloco.fragments: {n} is more than the model's {len(params)} tensors")
    sizes = [p.numel() for p in params]
    total, bounds, seen = sum(sizes), [0], 0
    for i, size in enumerate(sizes):
        seen += size
        left = n - len(bounds)  # boundaries still to place
        if left and (seen >= total * len(bounds) / n or len(sizes) - i - 1 == left):
            bounds.append(i + 1)
    return list(zip(bounds, bounds[1:] + [len(params)], strict=True))


def _like(value, param):
    """A saved local optimizer-state tensor as the DTensor shard of its DTensor parameter."""
    if not hasattr(param, "device_mesh") or getattr(value, "ndim", 0) == 0:
        return value
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(
        value.to(param.device),
        param.device_mesh,
        param.placements,
        run_check=False,
        shape=param.shape,
        stride=param.stride(),
    )
