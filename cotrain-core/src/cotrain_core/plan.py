"""The resolved plan of a config (--dry-run), step counts, peak FLOP/s and the resource checks.

steps_per_epoch, total = steps_of(cfg, n_train_windows)
plan = make_plan(cfg)                      # tokenizes (cached), allocates no weights
memory = memory_per_rank(cfg, models.plan(cfg, vocab_size))   # estimated bytes per rank, by part
check_resources(cfg, device, vocab_size, local_world)   # ConfigError naming model.size / precision /
                                                        # train.micro_batch_size
peak_flops(device) -> float | None         # bf16 dense peak of a known GPU, None on CPU
flops_per_token(models.plan(...), seq_length) -> float   # 6 N + 12 L h s (MFU's numerator per token)
"""

import math
from pathlib import Path

from . import data, models
from .config import Config, ConfigError
from .corpus import resolve_data_path
from .tokenizer import VOCAB_SIZE

# bf16 dense peak FLOP/s per device (torchtitan / prime table); unknown GPUs count as A100
PEAK_FLOPS = {"H200": 989e12, "H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12, "A100": 312e12}
PEAK_FLOPS |= {"L40S": 362e12, "A10G": 125e12, "L4": 121e12, "RTX 4090": 165e12}


def available_memory_bytes() -> int | None:
    try:
        import psutil

        return psutil.virtual_memory().available
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_flops(device) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_FLOPS.items():
        if key in name:
            return flops
    return PEAK_FLOPS["A100"]


def flops_per_token(model: dict, seq_length: int) -> float:
    """Training FLOPs per token of a models.plan() dict: 6 N + 12 L h s, the model FLOPs of MFU in
    PaLM (Chowdhery et al. 2022, appendix B) and torchtitan. 6 N: forward (2) and backward (4)
    multiply-adds over the N parameters that multiply (embedding lookups excluded, llama's untied
    output head included); 12 L h s: attention's two sequence-long matmuls (QK^T, AV) per layer,
    2 FLOPs x 3 passes each, causal masking not discounted."""
    n, h = model["parameters"], model["hidden_size"]
    if model["family"] == "causal":
        n -= model["vocab_size"] * h  # input embedding
    else:
        n -= (model["max_positions"] + 2) * h  # position and token-type embeddings (words: tied decoder)
    return 6 * n + 12 * model["layers"] * h * seq_length


def memory_per_rank(cfg: Config, model: dict) -> dict:
    """Estimated bytes one rank needs while training, by part (models.plan() gives the dims):

    model_state      fp32 weights + gradients + optimizer state (models.training_bytes); fsdp: 1/world,
                     diloco with fsdp inside islands: 1/island_size
    gathered         fsdp only: the unsharded fp32 parameters and gradients of the root (embeddings,
                     head) and of two layers at a time (the one computing and the one prefetched)
    activations      one micro-batch: per layer 34 * s * b * h bytes at 16 bits (Korthikanti et al.
                     2022, "Reducing Activation Recomputation in Large Transformer Models", eq. 2
                     without the 5as/h attention-score term, which sdpa's fused kernels do not
                     store), doubled in fp32; plus the fp32 logits and their gradient (2 * b * s * V * 4)
    diloco_outer     diloco only, in host memory: fp32 global weights, outer momentum, the flat
                     local copy and the pseudo-gradient (4 bytes each per parameter)
    device / host    what must fit on the accelerator and in host RAM (on CPU both are RAM)"""
    d, world, params = cfg.distributed, cfg.world_size, model["parameters"]
    # fsdp shards over all ranks; DiLoCo with fsdp inside an island over the island's ranks
    inner_fsdp = d.strategy == "diloco" and d.diloco.inner_strategy == "fsdp"
    shards = world if d.strategy == "fsdp" else d.diloco.island_size if inner_fsdp else 1
    fsdp = shards > 1
    state = models.training_bytes(params, cfg.train.optimizer)
    layers_total = model["layers"] * model["layer_parameters"]
    gathered = 8 * (params - layers_total + 2 * model["layer_parameters"]) if fsdp else 0
    b, s, h = cfg.train.micro_batch_size, cfg.data.seq_length, model["hidden_size"]
    act_bytes = 4 if cfg.model.precision == "fp32" else 2
    activations = model["layers"] * 34 * s * b * h * act_bytes // 2 + 2 * b * s * model["vocab_size"] * 4
    outer = 0
    if d.strategy == "diloco":
        outer = 4 * params * (3 + (d.diloco.outer_momentum > 0))
        outer //= d.diloco.island_size  # held once per island, split over its ranks
    model_state = state // shards
    device = model_state + gathered + activations
    return dict(
        model_state=model_state,
        gathered=gathered,
        activations=activations,
        diloco_outer=outer,
        device=device,
        host=outer,
    )


def check_resources(cfg: Config, device, vocab_size: int, local_world: int) -> None:
    """Config checks that need the machine: precision support and memory (per rank; the local ranks
    share the host RAM, and on CPU the device memory too)."""
    import torch

    cuda = device.type == "cuda"
    if cfg.model.precision == "fp16" and not cuda:
        raise ConfigError("model.precision: fp16 needs a CUDA GPU (use bf16 or fp32 on CPU)")
    plan = models.plan(cfg, vocab_size)
    mem = memory_per_rank(cfg, plan)
    gib = 2**30
    if cuda:
        have, where, share = torch.cuda.mem_get_info(device)[0], "free GPU memory", 1
    else:
        have, where, share = available_memory_bytes(), "available RAM", local_world
    if have is None:
        return
    weights = (mem["model_state"] + mem["gathered"]) * share
    if weights > have:
        raise ConfigError(
            f"model.size: {cfg.model.size} needs about {weights / gib:.1f} GiB for weights, gradients and "
            f"{cfg.train.optimizer} state ({plan['parameters'] / 1e9:.2f}B parameters, "
            f"{cfg.distributed.strategy}, {share} rank(s) here); only {have / gib:.1f} GiB {where}"
        )
    if weights + mem["activations"] * share > have:
        raise ConfigError(
            f"train.micro_batch_size: {cfg.train.micro_batch_size} sequences of {cfg.data.seq_length} "
            f"tokens need about {mem['activations'] * share / gib:.1f} GiB of activations on top of "
            f"{weights / gib:.1f} GiB for model.size {cfg.model.size}; only {have / gib:.1f} GiB {where} "
            "(lower train.micro_batch_size or data.seq_length)"
        )
    host = mem["host"] * local_world + (0 if cuda else (weights + mem["activations"] * share))
    ram = available_memory_bytes() if cuda else have
    if mem["host"] and ram is not None and host > ram:
        raise ConfigError(
            f"distributed.strategy: diloco's outer state (global weights, momentum, pseudo-gradient) "
            f"needs about {mem['host'] * local_world / gib:.1f} GiB of host RAM for {local_world} "
            f"local rank(s) besides training; only {ram / gib:.1f} GiB available RAM"
        )


def steps_of(cfg: Config, n_train_windows: int) -> tuple[int, int]:
    """(steps per epoch, total steps) for a config and data size."""
    steps_per_epoch = n_train_windows // cfg.train.batch_size
    total = cfg.train.epochs * steps_per_epoch
    if cfg.train.max_steps:
        total = min(total, cfg.train.max_steps)
    inner = cfg.distributed.diloco.inner_steps
    if cfg.distributed.strategy == "diloco" and total >= inner:
        total -= total % inner  # whole outer steps (a shorter run has one partial outer step)
    return steps_per_epoch, total


def make_plan(cfg: Config, defaulted: dict | None = None) -> dict:
    """The resolved plan for --dry-run: tokenizes the data (cached) but allocates no weights.

    A config written for another machine may name data that is not here: then the counts that need
    the data (train_windows, steps, outer_steps) are null, the vocabulary is the tokenizer's most,
    and `warnings` says so; bad data that is here still raises DataError."""
    warnings = []
    storage = Path(cfg.run.storage_root) if cfg.run.storage_root else None
    path = resolve_data_path(cfg.data.data_path, storage) if cfg.data.data_path else None
    if path is not None and not path.exists():
        warnings.append(f"data.data_path: {path} is not on this machine; steps are counted once it is")
        byte = cfg.data.tokenizer == "byte"
        windows, vocab = None, VOCAB_SIZE if byte else cfg.data.vocab_size
        steps_per_epoch = total = None
    else:
        prepared = data.prepare(cfg)
        windows, vocab = len(prepared.train), prepared.vocab_size
        steps_per_epoch, total = steps_of(cfg, windows)
    model = models.plan(cfg, vocab)
    d = cfg.distributed
    diloco = d.strategy == "diloco"
    inner = d.diloco.inner_steps if diloco else None
    return dict(
        model={**model, "precision": cfg.model.precision},
        memory=memory_per_rank(cfg, model),
        parameters=model["parameters"],
        world_size=cfg.world_size,
        nodes=d.nodes,
        gpus_per_node=d.gpus_per_node,
        strategy=d.strategy,
        batch_size=cfg.train.batch_size,
        per_rank_batch=cfg.per_rank_batch,
        micro_batch_size=cfg.train.micro_batch_size,
        micro_batches=cfg.grad_accum_steps,
        seq_length=cfg.data.seq_length,
        tokens_per_step=cfg.train.batch_size * cfg.data.seq_length,
        train_windows=windows,
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        inner_steps=inner,
        outer_steps=math.ceil(total / inner) if diloco and total is not None else None,
        pseudo_grad_dtype=d.diloco.pseudo_grad_dtype if diloco else None,
        islands=cfg.islands if diloco else None,
        island_size=d.diloco.island_size if diloco else None,
        inner_strategy=d.diloco.inner_strategy if diloco else None,
        defaulted=defaulted or {},
        warnings=warnings,
    )
