"""The memory check: model state, fsdp shards, activations and DiLoCo's outer state, per rank."""

import pytest
import torch
from conftest import base_config

from cotrain_core import models, plan
from cotrain_core.config import ConfigError, config_from_dict
from cotrain_core.tokenizer import VOCAB_SIZE

GiB = 2**30
CPU = torch.device("cpu")


def _cfg(tmp_path, strategy="ddp", gpus=1, micro=32, **diloco):
    cfg = base_config(
        tmp_path,
        model={"type": "llama2", "size": "125M", "precision": "fp32"},
        train={"batch_size": 32 * gpus, "micro_batch_size": micro},
        data={"seq_length": 2048},
        distributed={"gpus_per_node": gpus, "strategy": strategy},
    )
    if diloco:
        cfg["distributed"]["diloco"] = {"inner_steps": 4, **diloco}
    return config_from_dict(cfg)


@pytest.fixture
def ram(monkeypatch):
    def set_ram(gib):
        monkeypatch.setattr(plan, "available_memory_bytes", lambda: gib * GiB)

    return set_ram


def test_weights_fit_but_activations_do_not(tmp_path, ram):
    ram(8)
    big = _cfg(tmp_path, micro=32)
    mem = plan.memory_per_rank(big, models.plan(big, VOCAB_SIZE))
    assert mem["model_state"] < 8 * GiB < mem["model_state"] + mem["activations"]
    with pytest.raises(ConfigError) as e:
        plan.check_resources(big, CPU, VOCAB_SIZE, 1)
    assert str(e.value).startswith("train.micro_batch_size: 32 ") and "model.size 125M" in str(e.value)
    plan.check_resources(_cfg(tmp_path, micro=1), CPU, VOCAB_SIZE, 1)  # one sequence at a time fits


def test_weights_that_do_not_fit_name_the_model_size(tmp_path, ram):
    ram(1)
    with pytest.raises(ConfigError, match=r"^model\.size: 125M needs about 1\.\d GiB"):
        plan.check_resources(_cfg(tmp_path, micro=1), CPU, VOCAB_SIZE, 1)


def test_fsdp_shards_the_model_state_and_gathers_two_layers(tmp_path):
    ddp, fsdp = _cfg(tmp_path, "ddp", gpus=4), _cfg(tmp_path, "fsdp", gpus=4)
    model = models.plan(ddp, VOCAB_SIZE)
    a, b = plan.memory_per_rank(ddp, model), plan.memory_per_rank(fsdp, model)
    assert b["model_state"] == a["model_state"] // 4 and a["gathered"] == 0
    root = model["parameters"] - model["layers"] * model["layer_parameters"]
    assert b["gathered"] == 8 * (root + 2 * model["layer_parameters"])
    assert a["activations"] == b["activations"]  # each rank runs a whole micro-batch


def test_diloco_outer_state_lives_in_host_memory(tmp_path, ram):
    cfg = _cfg(tmp_path, "diloco", gpus=2, micro=1, outer_momentum=0.9)
    model = models.plan(cfg, VOCAB_SIZE)
    mem = plan.memory_per_rank(cfg, model)
    # one island of the 2 ranks: the outer state is held once, half on each rank
    assert mem["diloco_outer"] == mem["host"] == 16 * model["parameters"] // 2
    no_momentum = _cfg(tmp_path, "diloco", gpus=2, micro=1, outer_momentum=0.0)
    assert plan.memory_per_rank(no_momentum, model)["diloco_outer"] == 12 * model["parameters"] // 2
    need = 2 * (mem["device"] + mem["host"])  # two local ranks share the RAM on CPU
    ram(need / GiB * 0.99)
    with pytest.raises(ConfigError, match=r"^distributed\.strategy: diloco's outer state"):
        plan.check_resources(cfg, CPU, VOCAB_SIZE, 2)
    ram(need / GiB * 1.01)
    plan.check_resources(cfg, CPU, VOCAB_SIZE, 2)
