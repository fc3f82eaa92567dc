"""Model presets: exact parameter counts without allocating, and forward passes of the debug presets."""

import pytest
import torch
from conftest import base_config

from cotrain_core import models
from cotrain_core.config import config_from_dict
from cotrain_core.strategies.base import layers
from cotrain_core.tokenizer import VOCAB_SIZE

pytestmark = pytest.mark.usefixtures("one_thread")


PUBLISHED_VOCAB = {"llama2": 32_000, "llama3": 128_256, "bert": 30_522}


def _cfg(tmp_path, model_type, size, **data):
    return config_from_dict(base_config(tmp_path, model={"type": model_type, "size": size}, data=data))


@pytest.mark.parametrize(
    "model_type,size,published",
    [("llama2", "7B", 6.74e9), ("llama2", "13B", 13.0e9), ("llama2", "70B", 69.0e9), ("llama3", "7B", 8.03e9)]
    + [("llama3", "70B", 70.6e9), ("bert", "125M", 110e6)],
)
def test_published_sizes_with_published_vocab(tmp_path, model_type, size, published):
    plan = models.plan(_cfg(tmp_path, model_type, size), PUBLISHED_VOCAB[model_type])
    assert abs(plan["parameters"] - published) / published < 0.01, plan["parameters"]


def test_plan_of_7b_allocates_nothing_and_states_dims(tmp_path):
    import tracemalloc

    tracemalloc.start()
    plan = models.plan(_cfg(tmp_path, "llama2", "7B"), VOCAB_SIZE)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000
    assert plan == {
        "type": "llama2",
        "size": "7B",
        "family": "causal",
        "hidden_size": 4096,
        "layers": 32,
        "heads": 32,
        "kv_heads": 32,
        "intermediate_size": 11008,
        "vocab_size": VOCAB_SIZE,
        "max_positions": 4096,
        "parameters": 6_738_415_616 - 2 * (32_000 - VOCAB_SIZE) * 4096,  # only the vocabulary differs
        "layer_parameters": 4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096,  # attention, MLP, two norms
        "bytes_for_training": plan["parameters"] * 16,  # adamw: 4 weights + 4 grads + 8 state
    }


def test_bert_base_with_byte_vocab_matches_the_formula(tmp_path):
    plan = models.plan(_cfg(tmp_path, "bert", "125M"), VOCAB_SIZE)
    # bert-base in BertForMaskedLM (no pooler, tied decoder) has 109,514,298 parameters with 30522 tokens;
    # each token less removes its embedding row (768) and its decoder bias (1)
    assert plan["parameters"] == 109_514_298 - (30_522 - VOCAB_SIZE) * 769
    assert (plan["family"], plan["hidden_size"], plan["layers"], plan["heads"]) == ("masked", 768, 12, 12)
    assert (plan["intermediate_size"], plan["max_positions"]) == (3072, 512)


@pytest.mark.parametrize("model_type,size", list(models.PRESETS))
def test_plan_equals_the_built_model(tmp_path, model_type, size):
    """The analytic count is exact: compare with the module built on the meta device (no memory)."""
    cfg = _cfg(tmp_path, model_type, size, seq_length=1024)
    for vocab in (VOCAB_SIZE, 1000):
        with torch.device("meta"):
            model = models.build_model(cfg, vocab)
        plan = models.plan(cfg, vocab)
        assert plan["parameters"] == sum(p.numel() for p in model.parameters())
        first = layers(model)[0]  # the unit fsdp shards
        assert plan["layer_parameters"] == sum(p.numel() for p in first.parameters())


def test_debug_presets_are_small(tmp_path):
    for model_type in ("llama2", "llama3", "bert"):
        assert models.plan(_cfg(tmp_path, model_type, "debug"), VOCAB_SIZE)["parameters"] < 1_000_000


@pytest.mark.parametrize("model_type", ["llama3", "bert"])
def test_debug_forward_pass(tmp_path, model_type):
    from transformers import BertForMaskedLM, LlamaForCausalLM

    cfg = _cfg(tmp_path, model_type, "debug", seq_length=16)
    torch.manual_seed(0)
    model = models.build_model(cfg, VOCAB_SIZE)
    assert isinstance(model, BertForMaskedLM if model_type == "bert" else LlamaForCausalLM)
    assert model.config._attn_implementation == "sdpa"
    ids = torch.randint(VOCAB_SIZE, (2, 16))
    logits = model(input_ids=ids).logits
    assert logits.shape == (2, 16, VOCAB_SIZE) and torch.isfinite(logits).all()


def test_bert_positions_grow_with_seq_length(tmp_path):
    cfg = _cfg(tmp_path, "bert", "debug", seq_length=1024)
    assert models.plan(cfg, VOCAB_SIZE)["max_positions"] == 1024
    assert (
        models.plan(_cfg(tmp_path, "llama2", "debug", seq_length=4096), VOCAB_SIZE)["max_positions"] == 4097
    )


def test_docs_preset_table_matches_plan(tmp_path):
    import re

    from conftest import REPO

    rows = re.findall(
        r"^\| (\w+)/(\w+)[^|]*\|.*\(([\d,]+)\) \|$", (REPO / "docs" / "config.md").read_text(), re.M
    )
    assert len(rows) == len(models.PRESETS)
    for model_type, size, count in rows:
        assert models.param_count(model_type, size, VOCAB_SIZE) == int(count.replace(",", "")), (
            model_type,
            size,
        )
