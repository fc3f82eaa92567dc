"""What makes a training step fast without changing what it computes: activation checkpointing,
torch.compile of the layers, and step timing that does not stall the GPU.

    speed.prepare_model(model, cfg.model)   # before the strategy wraps or shards the model
    timer = speed.StepTimer(device); timer.start(); ...queue the step...; timer.stop()
    timer.seconds()                          # later: waits for that step's end only

Activation checkpointing is transformers' own (non-reentrant torch.utils.checkpoint around each
decoder/encoder layer): the parameter names stay those of the model, so checkpoints and exports do
not change. torch.compile compiles each layer in place (Module.compile): the state dict keeps its
names too, and FSDP's hooks around a layer stay outside the compiled code (Dynamo skips them).
"""

import os
import shutil
import time

from .config import ConfigError
from .strategies.base import layers


def c_compiler() -> str | None:
    """The C compiler inductor and Triton would use ($CC, else cc / gcc / clang on the PATH)."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def prepare_model(model, model_cfg):
    """Apply model.activation_checkpointing and model.compile to a freshly built model (before
    sharding, as torchtitan orders them); returns it."""
    if model_cfg.activation_checkpointing:
        kwargs = {"use_reentrant": False}
        enable = getattr(model, "activation_checkpointing_enable", None)  # the newer name
        if enable is not None:
            enable(kwargs)
        else:  # transformers before the rename (the GPU machine's 5.17)
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if model_cfg.compile:
        if c_compiler() is None:
            raise ConfigError(
                "model.compile: torch.compile (inductor) needs a C compiler and none was found "
                "($CC, cc, gcc, clang); install one or set model.compile = false"
            )
        for layer in layers(model):
            layer.compile()
    return model


class StepTimer:
    """Wall time of one step's work: CUDA events on a GPU (read once the step has finished, without
    waiting for later queued work), the host clock elsewhere (CPU work is done when queued)."""

    def __init__(self, device):
        import torch

        self.cuda = device.type == "cuda"
        self._events = (
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            if self.cuda
            else None
        )
        self._start = self._end = 0.0

    def start(self) -> None:
        if self.cuda:
            self._events[0].record()
        self._start = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            self._events[1].record()
        self._end = time.perf_counter()

    def seconds(self) -> float:
        if self.cuda:
            self._events[1].synchronize()
            return max(self._events[0].elapsed_time(self._events[1]) / 1000, 1e-9)
        return max(self._end - self._start, 1e-9)
