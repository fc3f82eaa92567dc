"""The process group and the small collectives the training loop needs.

ctx, local_world = init_distributed(cfg, env)   # env: launch.worker_env() (None: one process)
backend(cuda)                                   # "gloo" / "cpu:gloo,cuda:nccl"
d = Dist(ctx); d.barrier(); d.all_sum([loss, ...]); d.broadcast(obj)
destroy()                                       # after training, errors swallowed
lost_peer(exc)                                  # the error says another rank went away
"""

import datetime
import os

from .config import Config, ConfigError

DIST_TIMEOUT_S = float(os.environ.get("COTRAIN_DIST_TIMEOUT_S", "600"))  # process group init + collectives


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


# What gloo and NCCL say when the other end of a collective died or hangs: the error is then a
# consequence of another rank's failure, and the launcher and the workflow report that one.
_PEER_LOST = (
    "Connection reset by peer",
    "Connection closed by peer",
    "Broken pipe",
    "Timed out waiting",
    "NCCL communicator was aborted",
    "remote process exited",
    "Watchdog caught collective operation timeout",
)


def lost_peer(exc: BaseException) -> bool:
    """Whether a rank's exception reports a lost peer rather than a failure of its own."""
    import torch.distributed as dist

    return isinstance(exc, dist.DistNetworkError) or any(s in str(exc) for s in _PEER_LOST)


def backend(cuda: bool) -> str:
    """The default group's backend: gloo on CPU; with GPUs nccl for CUDA tensors *and* gloo for CPU
    tensors (DiLoCo's outer state and pseudo-gradients live on CPU), so every group carries both."""
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


def init_distributed(cfg: Config, env):
    """Process group (see backend()) with one GPU per local rank, and this rank's context."""
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
            backend(cuda),
            rank=ctx.rank,
            world_size=ctx.world_size,
            timeout=datetime.timedelta(seconds=DIST_TIMEOUT_S),
        )
    return ctx, local_world


def destroy():
    try:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # teardown after an error must not mask the exit code
        pass
