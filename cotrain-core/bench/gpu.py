"""GPU benchmarks (not run on the 2-core CPU dev machine: it has no GPU).

    python cotrain-core/bench/gpu.py [--size 125M] [--steps 60] [--seq 1024] [--batch 8]

1. A hand-written bf16 loop of a ~1B Llama (hidden 2048, 22 layers, MLP 5632, 16 heads; the trainer
   has no 1B preset) on one GPU: tokens/s and MFU = 6 * N * tokens/s / peak bf16 FLOP/s.
2. The trainer itself (llama2/<size>, bf16) with ddp and with fsdp on one GPU (world size 1:
   plain loop / fully_shard over one rank): median tokens/s and the `mfu` of its step events.
"""

import argparse
import statistics
import time

from common import config, machine, run, tmpdir


def one_b_mfu(steps: int, seq: int, batch: int) -> tuple[float, float, int]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from cotrain_core.train import PEAK_FLOPS

    cfg = LlamaConfig(
        vocab_size=32000,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=16,
        num_key_value_heads=16,
        max_position_embeddings=seq + 1,
        attn_implementation="sdpa",
    )
    model = LlamaForCausalLM(cfg).cuda().to(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randint(0, 32000, (batch, seq), device="cuda")
    rates = []
    for _ in range(steps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        model(input_ids=x, labels=x).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        rates.append(batch * seq / (time.perf_counter() - t))
    tps = statistics.median(rates[5:])
    name = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_FLOPS.items() if k in name), PEAK_FLOPS["A100"])
    return tps, 6 * n * tps / peak, n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", default="125M")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--batch", type=int, default=8)
    a = p.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu.py needs a CUDA GPU")
    print(f"machine: {machine()}")
    tps, mfu, n = one_b_mfu(a.steps, a.seq, a.batch)
    head = f"hand loop llama {n / 1e9:.2f}B bf16, seq {a.seq}, batch {a.batch}"
    print(f"{head}: {tps:,.0f} tokens/s, MFU {mfu:.1%}")
    for strategy in ("ddp", "fsdp"):
        tmp = tmpdir()
        cfg = config(
            tmp,
            model={"size": a.size, "precision": "bf16"},
            train={"max_steps": a.steps, "batch_size": a.batch, "epochs": 1000},
            data={"seq_length": a.seq},
            distributed={"strategy": strategy},
        )
        rc, events = run(cfg)
        steps = [e for _, e in events if e["event"] == "step"][5:]
        assert rc == 0 and steps, f"{strategy} exited {rc}"
        med = statistics.median(e["tokens_per_s"] for e in steps)
        mfu = statistics.median(e["mfu"] for e in steps)
        print(f"trainer {strategy} llama2/{a.size} bf16: {med:,.0f} tokens/s, MFU {mfu:.1%}")


if __name__ == "__main__":
    main()
