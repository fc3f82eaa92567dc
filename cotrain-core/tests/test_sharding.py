"""fsdp models built on the meta device and sharded in two gloo processes equal the ordinary init;
async checkpoints save the values of when they were taken."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import dist_config, write_config

from cotrain_core import models
from cotrain_core.config import load_config
from cotrain_core.launch import free_port
from cotrain_core.strategies import DistContext, build_model
from cotrain_core.tokenizer import VOCAB_SIZE


def _config(tmp_path, model_type):
    cfg = dist_config(tmp_path, "fsdp", model={"type": model_type}, data={"seq_length": 16})
    return load_config(write_config(tmp_path, cfg))


def _rank(rank, port, cfg, result):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.manual_seed(cfg.train.seed)
        model = build_model(cfg, VOCAB_SIZE, DistContext(rank, 2, rank, torch.device("cpu")))
        local = {n: p.to_local().numel() for n, p in model.named_parameters()}
        full = {n: p.full_tensor().detach() for n, p in model.named_parameters()}
        buffers = {n: b.clone() for n, b in model.named_buffers()}
        if rank == 0:
            embed, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
            result.update(full=full, buffers=buffers, local=local, tied=embed is head)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("model_type", ["llama2", "bert"])
def test_meta_built_shards_equal_the_full_init(tmp_path, model_type, one_thread):
    cfg = _config(tmp_path, model_type)
    with mp.Manager() as manager:
        result = manager.dict()
        mp.spawn(_rank, args=(free_port(), cfg, result), nprocs=2)
        result = dict(result)
    torch.manual_seed(cfg.train.seed)
    reference = models.build_model(cfg, VOCAB_SIZE)
    want = dict(reference.named_parameters())
    assert result["full"].keys() == want.keys()
    for name, value in result["full"].items():
        assert torch.equal(value, want[name].detach()), name  # bitwise the single-process init
        assert result["local"][name] < want[name].numel(), name  # rank 0 holds only its shard
    for name, value in reference.named_buffers():  # incl. non-persistent (rotary inv_freq)
        assert torch.equal(result["buffers"][name], value), name
    assert result["tied"] == (model_type == "bert")


def test_async_save_keeps_the_values_of_when_it_was_called(tmp_path, one_thread):
    """Training goes on while a checkpoint is written: async_save must have copied the tensors."""
    import torch.distributed.checkpoint as dcp

    weights = torch.randn(256, 256)
    before = weights.clone()
    future = dcp.async_save({"w": weights}, checkpoint_id=str(tmp_path))
    weights.add_(1.0)  # the next optimizer step
    future.result()
    back = {"w": torch.empty_like(weights)}
    dcp.load(back, checkpoint_id=str(tmp_path))
    assert torch.equal(back["w"], before)
