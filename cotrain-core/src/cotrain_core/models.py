"""Model presets: transformers LlamaConfig -> LlamaForCausalLM, randomly initialised (no downloads).

    python -m cotrain_core.models          # table of presets with parameter counts and memory needs

Every preset uses the byte tokenizer vocabulary (data.VOCAB_SIZE = 259), not the published
32k/128k vocabularies, so 7B/13B/70B have the published layer dims but fewer embedding params.
param_count() and training_bytes() are pure Python so the memory check runs before torch loads.
"""

from .data import BOS, EOS, PAD, VOCAB_SIZE

# hidden, intermediate (MLP), layers, attention heads, key/value heads, rope theta, max positions
_L2 = dict(rope_theta=10_000.0, max_positions=4096)
_L3 = dict(rope_theta=500_000.0, max_positions=8192)
PRESETS = {
    ("llama2", "debug"): dict(hidden=128, mlp=352, layers=2, heads=4, kv_heads=4, **_L2),
    ("llama2", "125M"): dict(hidden=768, mlp=2048, layers=12, heads=12, kv_heads=12, **_L2),
    ("llama2", "7B"): dict(hidden=4096, mlp=11008, layers=32, heads=32, kv_heads=32, **_L2),
    ("llama2", "13B"): dict(hidden=5120, mlp=13824, layers=40, heads=40, kv_heads=40, **_L2),
    ("llama2", "70B"): dict(hidden=8192, mlp=28672, layers=80, heads=64, kv_heads=8, **_L2),
    # llama3: grouped-query attention and rope theta 500k; 7B = Llama 3 8B dims, 70B = Llama 3 70B dims,
    # 13B (no Llama 3 13B exists) = Llama 2 13B dims with 8 kv heads.
    ("llama3", "debug"): dict(hidden=128, mlp=448, layers=2, heads=4, kv_heads=2, **_L3),
    ("llama3", "125M"): dict(hidden=768, mlp=2048, layers=12, heads=12, kv_heads=4, **_L3),
    ("llama3", "7B"): dict(hidden=4096, mlp=14336, layers=32, heads=32, kv_heads=8, **_L3),
    ("llama3", "13B"): dict(hidden=5120, mlp=13824, layers=40, heads=40, kv_heads=8, **_L3),
    ("llama3", "70B"): dict(hidden=8192, mlp=28672, layers=80, heads=64, kv_heads=8, **_L3),
}

# bytes per parameter while training in fp32 master weights: weights 4 + grads 4 + optimizer state
_STATE_BYTES = {"adam": 8, "adamw": 8, "sgd": 4}  # adam: exp_avg + exp_avg_sq; sgd: momentum


def param_count(model_type: str, size: str) -> int:
    p = PRESETS[(model_type, size)]
    h, head_dim = p["hidden"], p["hidden"] // p["heads"]
    attn = 2 * h * h + 2 * h * p["kv_heads"] * head_dim  # q, o + k, v
    mlp = 3 * h * p["mlp"]  # gate, up, down
    per_layer = attn + mlp + 2 * h  # + two RMSNorms
    return 2 * VOCAB_SIZE * h + p["layers"] * per_layer + h  # untied embed + lm_head, final norm


def training_bytes(params: int, optimizer: str) -> int:
    """Weights + gradients + optimizer state (activations not included)."""
    return params * (8 + _STATE_BYTES[optimizer])


def llama_config(model_type: str, size: str, seq_length: int):
    from transformers import LlamaConfig

    p = PRESETS[(model_type, size)]
    return LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=p["hidden"],
        intermediate_size=p["mlp"],
        num_hidden_layers=p["layers"],
        num_attention_heads=p["heads"],
        num_key_value_heads=p["kv_heads"],
        max_position_embeddings=max(p["max_positions"], seq_length + 1),  # windows are L+1 tokens
        rope_parameters={"rope_type": "default", "rope_theta": p["rope_theta"]},
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        attn_implementation="sdpa",
    )


def build_model(model_type: str, size: str, seq_length: int):
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM(llama_config(model_type, size, seq_length))


if __name__ == "__main__":
    for t, s in PRESETS:
        n = param_count(t, s)
        print(f"{t:7} {s:6} {n:>15,} params  {training_bytes(n, 'adamw') / 2**30:8.1f} GiB with adamw")
