"""Model presets: Llama 2 / Llama 3 (LlamaForCausalLM) and BERT (BertForMaskedLM), random init, no downloads.

    python -m cotrain_core.models          # table of presets with parameter counts and memory needs

Public API:
    plan(cfg: Config, vocab_size: int) -> dict
        keys: type, size, family ("causal" | "masked"), hidden_size, layers, heads, kv_heads,
        intermediate_size, vocab_size, max_positions, parameters, layer_parameters, bytes_for_training
        (pure Python: nothing is allocated and torch is not imported)
    build_model(cfg: Config, vocab_size: int) -> torch.nn.Module
    family(model_type: str) -> str                      # "causal" | "masked"
    param_count(model_type, size, vocab_size=tokenizer.VOCAB_SIZE, seq_length=128) -> int
    training_bytes(params: int, optimizer: str) -> int

The vocabulary is the tokenizer's (byte: tokenizer.VOCAB_SIZE = 260; bpe: the trained size), not the
published 32k / 128k / 30k vocabularies, so the large presets have the published layer dimensions
but fewer embedding parameters. Llama embeddings are untied (as published); BERT ties the MLM decoder
to the word embeddings (as published) and has no pooler (BertForMaskedLM).
"""

from .tokenizer import VOCAB_SIZE, special_ids

# hidden, intermediate (MLP), layers, attention heads, key/value heads, rope theta, max positions
_L2 = dict(rope_theta=10_000.0, max_positions=4096)
_L3 = dict(rope_theta=500_000.0, max_positions=8192)
_BERT = dict(max_positions=512)
PRESETS = {
    ("llama2", "debug"): dict(hidden=128, mlp=352, layers=2, heads=4, kv_heads=4, **_L2),
    ("llama2", "125M"): dict(hidden=768, mlp=2048, layers=12, heads=12, kv_heads=12, **_L2),
    ("llama2", "1B"): dict(
        hidden=2048, mlp=5632, layers=22, heads=16, kv_heads=16, **_L2
    ),  # TinyLlama dims, MHA
    ("llama2", "7B"): dict(hidden=4096, mlp=11008, layers=32, heads=32, kv_heads=32, **_L2),
    ("llama2", "13B"): dict(hidden=5120, mlp=13824, layers=40, heads=40, kv_heads=40, **_L2),
    ("llama2", "70B"): dict(hidden=8192, mlp=28672, layers=80, heads=64, kv_heads=8, **_L2),
    # llama3: grouped-query attention and rope theta 500k; 7B = Llama 3 8B dims, 70B = Llama 3 70B dims,
    # 13B (no Llama 3 13B exists) = Llama 2 13B dims with 8 kv heads; 1B = Llama 3.2 1B dims.
    ("llama3", "debug"): dict(hidden=128, mlp=448, layers=2, heads=4, kv_heads=2, **_L3),
    ("llama3", "125M"): dict(hidden=768, mlp=2048, layers=12, heads=12, kv_heads=4, **_L3),
    ("llama3", "1B"): dict(hidden=2048, mlp=8192, layers=16, heads=32, kv_heads=8, **_L3),
    ("llama3", "7B"): dict(hidden=4096, mlp=14336, layers=32, heads=32, kv_heads=8, **_L3),
    ("llama3", "13B"): dict(hidden=5120, mlp=13824, layers=40, heads=40, kv_heads=8, **_L3),
    ("llama3", "70B"): dict(hidden=8192, mlp=28672, layers=80, heads=64, kv_heads=8, **_L3),
    # bert: debug = bert-tiny-like dims; 125M = bert-base (110M with its 30522 vocabulary).
    # No published BERT exists at 7B / 13B / 70B: config.py rejects those sizes.
    ("bert", "debug"): dict(hidden=128, mlp=512, layers=2, heads=2, kv_heads=2, **_BERT),
    ("bert", "125M"): dict(hidden=768, mlp=3072, layers=12, heads=12, kv_heads=12, **_BERT),
}

# bytes per parameter while training in fp32 master weights: weights 4 + grads 4 + optimizer state
_STATE_BYTES = {"adam": 8, "adamw": 8, "sgd": 4}  # adam: exp_avg + exp_avg_sq; sgd: momentum


def family(model_type: str) -> str:
    """Training objective of a model type: "causal" (next token) or "masked" (masked LM)."""
    return "masked" if model_type == "bert" else "causal"


def _max_positions(model_type: str, size: str, seq_length: int) -> int:
    p = PRESETS[(model_type, size)]
    if family(model_type) == "masked":
        return max(p["max_positions"], seq_length)  # bert sees the first seq_length tokens of a window
    return max(p["max_positions"], seq_length + 1)  # llama sees whole windows of L+1 tokens


def layer_param_count(model_type: str, size: str) -> int:
    """Parameters of one decoder / encoder layer (the unit fsdp shards and gathers)."""
    p = PRESETS[(model_type, size)]
    h, inter = p["hidden"], p["mlp"]
    if family(model_type) == "masked":
        attn = 4 * (h * h + h) + 2 * h  # q, k, v, o with biases + LayerNorm
        return attn + h * inter + inter + inter * h + h + 2 * h  # up, down with biases + LayerNorm
    head_dim = h // p["heads"]
    attn = 2 * h * h + 2 * h * p["kv_heads"] * head_dim  # q, o + k, v (no biases)
    return attn + 3 * h * inter + 2 * h  # gate, up, down + two RMSNorms


def param_count(model_type: str, size: str, vocab_size: int = VOCAB_SIZE, seq_length: int = 128) -> int:
    """Exact parameter count of build_model() for these dims, computed without allocating anything."""
    p = PRESETS[(model_type, size)]
    h, V = p["hidden"], vocab_size
    layers = p["layers"] * layer_param_count(model_type, size)
    if family(model_type) == "masked":
        positions = _max_positions(model_type, size, seq_length)
        embeddings = V * h + positions * h + 2 * h + 2 * h  # word, position, token type (2), LayerNorm
        head = h * h + h + 2 * h + V  # transform dense + LayerNorm; decoder tied to embeddings, own bias
        return embeddings + layers + head
    return 2 * V * h + layers + h  # untied embed + lm_head, final norm


def training_bytes(params: int, optimizer: str) -> int:
    """Weights + gradients + optimizer state in fp32 (activations not included)."""
    return params * (8 + _STATE_BYTES[optimizer])


def plan(cfg, vocab_size: int) -> dict:
    """The resolved model for a config and tokenizer vocabulary; allocates nothing."""
    t, s = cfg.model.type, cfg.model.size
    p = PRESETS[(t, s)]
    params = param_count(t, s, vocab_size, cfg.data.seq_length)
    return dict(
        type=t,
        size=s,
        family=family(t),
        hidden_size=p["hidden"],
        layers=p["layers"],
        heads=p["heads"],
        kv_heads=p["kv_heads"],
        intermediate_size=p["mlp"],
        vocab_size=vocab_size,
        max_positions=_max_positions(t, s, cfg.data.seq_length),
        parameters=params,
        layer_parameters=layer_param_count(t, s),
        bytes_for_training=training_bytes(params, cfg.train.optimizer),
    )


def model_config(model_type: str, size: str, vocab_size: int, seq_length: int, tokenizer: str = "byte"):
    """The transformers config object (LlamaConfig or BertConfig) of a preset."""
    p = PRESETS[(model_type, size)]
    ids = special_ids(tokenizer)
    positions = _max_positions(model_type, size, seq_length)
    if family(model_type) == "masked":
        from transformers import BertConfig

        return BertConfig(
            vocab_size=vocab_size,
            hidden_size=p["hidden"],
            num_hidden_layers=p["layers"],
            num_attention_heads=p["heads"],
            intermediate_size=p["mlp"],
            max_position_embeddings=positions,
            type_vocab_size=2,
            pad_token_id=ids["pad"],
            tie_word_embeddings=True,
            attn_implementation="sdpa",
        )
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=p["hidden"],
        intermediate_size=p["mlp"],
        num_hidden_layers=p["layers"],
        num_attention_heads=p["heads"],
        num_key_value_heads=p["kv_heads"],
        max_position_embeddings=positions,
        rope_parameters={"rope_type": "default", "rope_theta": p["rope_theta"]},
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        pad_token_id=ids["pad"],
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        attn_implementation="sdpa",
    )


def build_model(cfg, vocab_size: int, *legacy):
    """A randomly initialised LlamaForCausalLM / BertForMaskedLM (seed torch before calling).

    Build under `with torch.device("meta"):` to get the module without allocating weights.
    (Legacy form build_model(model_type, size, seq_length) still works: byte vocabulary.)
    """
    if isinstance(cfg, str):  # legacy: build_model(model_type, size, seq_length)
        model_type, size, seq_length, vocab, tokenizer = cfg, vocab_size, legacy[0], VOCAB_SIZE, "byte"
    else:
        model_type, size, seq_length = cfg.model.type, cfg.model.size, cfg.data.seq_length
        vocab, tokenizer = vocab_size, cfg.data.tokenizer
    config = model_config(model_type, size, vocab, seq_length, tokenizer)
    if family(model_type) == "masked":
        from transformers import BertForMaskedLM

        return BertForMaskedLM(config)
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM(config)


if __name__ == "__main__":
    for t, s in PRESETS:
        n = param_count(t, s)
        print(f"{t:7} {s:6} {n:>15,} params  {training_bytes(n, 'adamw') / 2**30:8.1f} GiB with adamw")
