"""The objective (causal / masked LM) and `python -m cotrain_core.evaluate` on exported models."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import base_config

from cotrain_core import corpus, data, evaluate, export, models, objective, tokenizer
from cotrain_core.config import config_from_dict

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(tmp_path, model_type, **data_kw):
    raw = base_config(
        tmp_path,
        model={"type": model_type, "size": "debug"},
        train={"batch_size": 8, "learning_rate": 0.003},
        data={"seq_length": 32, **data_kw},
    )
    raw["run"]["storage_root"] = str(tmp_path / "storage")
    return config_from_dict(raw)


def _train(cfg, prepared, steps):
    """A plain loop over the project's pieces; returns (model, per-step losses)."""
    torch.manual_seed(cfg.train.seed)
    model = models.build_model(cfg, prepared.vocab_size)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay
    )
    family, B = models.family(cfg.model.type), cfg.train.batch_size
    per_epoch = len(prepared.train) // B
    losses = []
    for step in range(1, steps + 1):
        epoch, pos = divmod(step - 1, per_epoch)
        idx = data.rank_indices(data.epoch_order(len(prepared.train), epoch, cfg.train.seed), pos, B, 0, 1)
        for group in opt.param_groups:
            group["lr"] = objective.lr_at(step, steps, cfg.train)
        g = objective.step_generator(cfg.train.seed, step)
        loss, _, _ = objective.loss_and_accuracy(
            model, prepared.train[idx], family, cfg.data.mlm_probability, g, prepared.pad_id, prepared.mask_id
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return model, losses


def _run_evaluate(*args):
    proc = subprocess.run(
        [sys.executable, "-m", "cotrain_core.evaluate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    return proc.returncode, json.loads(lines[0])


@pytest.mark.parametrize("model_type,kind", [("bert", "byte"), ("llama2", "bpe")])
def test_evaluate_reproduces_the_in_process_loss(tmp_path, model_type, kind):
    cfg = _cfg(tmp_path, model_type, tokenizer=kind, vocab_size=400)
    prepared = data.prepare(cfg)
    model, _ = _train(cfg, prepared, steps=5)
    family = models.family(model_type)
    want = objective.evaluate_windows(
        model, prepared.val, family, cfg.data.mlm_probability, prepared.pad_id, prepared.mask_id
    )
    final = tmp_path / "final"
    model.save_pretrained(final)
    export.write_model_info(final, cfg, prepared, step=5)

    data_arg = prepared.splits_dir / "validation.npy" if model_type == "bert" else prepared.splits_dir
    rc, event = _run_evaluate("--model", final, "--data", data_arg, "--batch-size", 3)
    assert rc == 0 and event["v"] == 1 and event["event"] == "eval" and event["step"] == 5
    assert abs(event["loss"] - want["loss"]) <= 1e-4 * want["loss"]
    assert abs(event["accuracy"] - want["accuracy"]) <= 1e-6
    assert abs(event["perplexity"] - want["perplexity"]) <= 1e-3 * want["perplexity"]

    # raw text is tokenized with the model's own tokenizer (in-process: same code path as the CLI)
    text = tmp_path / "held-out.txt"
    text.write_text(corpus.builtin_corpus(4000, seed=9))
    got = evaluate.evaluate_model(final, text, max_windows=0)
    codec = tokenizer.load_codec(prepared.tokenizer_info, final)
    tokens = data.windows(codec.encode_documents([text.read_text()]), 32)
    ref = objective.evaluate_windows(
        model, tokens, family, cfg.data.mlm_probability, prepared.pad_id, prepared.mask_id, max_windows=0
    )
    assert got["step"] == 5 and abs(got["loss"] - ref["loss"]) < 1e-4 * ref["loss"]


def test_evaluate_errors(tmp_path):
    cfg = _cfg(tmp_path, "llama2")
    prepared = data.prepare(cfg)
    torch.manual_seed(0)
    final = tmp_path / "final"
    models.build_model(cfg, prepared.vocab_size).save_pretrained(final)
    export.write_model_info(final, cfg, prepared, step=1)
    val = prepared.splits_dir / "validation.npy"

    rc, event = _run_evaluate("--model", tmp_path / "nope", "--data", val)
    assert rc == 2 and event["event"] == "error" and event["kind"] == "config"
    assert event["message"].startswith("--model:")
    rc, event = _run_evaluate("--model", final, "--data", tmp_path / "missing.txt")
    assert rc == 3 and event["kind"] == "data" and event["message"].startswith("--data: file not found")

    with pytest.raises(evaluate.ArgumentError, match="^--model: .* no cotrain_tokenizer.json"):
        (tmp_path / "bare").mkdir()
        (tmp_path / "bare" / "config.json").write_text("{}")
        evaluate.evaluate_model(tmp_path / "bare", val)
    short = tmp_path / "short.txt"
    short.write_text("hi")
    with pytest.raises(data.DataError, match="^--data: too short"):
        evaluate.evaluate_model(final, short)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe" * 100)
    with pytest.raises(data.DataError, match="^--data: .* is not UTF-8"):
        evaluate.evaluate_model(final, bad)
    bpe = data.prepare(_cfg(tmp_path, "llama2", tokenizer="bpe", vocab_size=300))
    with pytest.raises(evaluate.ArgumentError, match="^--data: .* was tokenized with cotrain-bpe"):
        evaluate.evaluate_model(final, bpe.splits_dir / "validation.npy")
    with pytest.raises(evaluate.ArgumentError, match="^arguments: .*--data"):
        evaluate._parse_args(["--model", str(final)])
    with pytest.raises(evaluate.ArgumentError, match="^--batch-size: must be > 0"):
        evaluate._parse_args(["--model", str(final), "--data", str(val), "--batch-size", "0"])


def test_masking_is_deterministic_and_follows_bert(tmp_path):
    cfg = _cfg(tmp_path, "bert")
    torch.manual_seed(0)
    model = models.build_model(cfg, tokenizer.VOCAB_SIZE).eval()
    batch = torch.randint(256, (64, 33))  # [B, L+1]
    batch[0, :5] = tokenizer.PAD  # pad is never chosen
    draws = objective._mask_draws((64, 32), tokenizer.VOCAB_SIZE, objective.step_generator(1, 7))
    inputs, labels, chosen = objective._masked_inputs(
        batch[:, :-1], draws, 0.15, tokenizer.PAD, tokenizer.MASK
    )
    n = int(chosen.sum())
    assert 0.12 < n / chosen.numel() < 0.18 and not chosen[0, :5].any()
    assert torch.equal(labels[chosen], batch[:, :-1][chosen]) and (labels[~chosen] == -100).all()
    assert torch.equal(inputs[~chosen], batch[:, :-1][~chosen])
    masked = (inputs[chosen] == tokenizer.MASK).float().mean()
    kept = (inputs[chosen] == batch[:, :-1][chosen]).float().mean()
    assert 0.75 < masked < 0.85 and 0.06 < kept < 0.16

    def run(seed, step):
        with torch.no_grad():
            g = objective.step_generator(seed, step)
            return objective.loss_and_accuracy(model, batch, "masked", 0.15, g, tokenizer.PAD, tokenizer.MASK)

    (l1, c1, n1), (l2, c2, n2), (l3, _, _) = run(1, 7), run(1, 7), run(1, 8)
    assert l1.item() == l2.item() and c1.item() == c2.item() and n1 == n2 == n and l1.item() != l3.item()
    # a tiny batch still masks at least one position
    _, _, count = objective.loss_and_accuracy(
        model, batch[:1, :3], "masked", 0.01, None, tokenizer.PAD, tokenizer.MASK
    )
    assert count >= 1


def test_sharded_eval_sums_equal_the_whole(tmp_path):
    cfg = _cfg(tmp_path, "bert")
    torch.manual_seed(0)
    model = models.build_model(cfg, tokenizer.VOCAB_SIZE)
    windows = torch.randint(256, (21, 33))
    whole = objective.evaluate_windows(
        model, windows, "masked", 0.15, tokenizer.PAD, tokenizer.MASK, batch_size=8
    )
    parts = [
        objective.eval_sums(
            model, windows[a:b], "masked", 0.15, tokenizer.PAD, tokenizer.MASK, batch_size=5, first_index=a
        )
        for a, b in ((0, 11), (11, 21))
    ]
    sharded = objective.metrics_from_sums(*(sum(p[i] for p in parts) for i in range(3)))
    assert abs(sharded["loss"] - whole["loss"]) < 1e-5 and sharded["accuracy"] == whole["accuracy"]
    assert model.training  # eval restores the training mode


def test_bert_masked_lm_loss_falls_on_the_builtin_corpus(tmp_path):
    raw = base_config(
        tmp_path,
        model={"type": "bert", "size": "debug"},
        train={"batch_size": 16, "learning_rate": 0.002},
        data={"seq_length": 64},
    )
    cfg = config_from_dict(raw)
    prepared = data.prepare(cfg)
    _, losses = _train(cfg, prepared, steps=100)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.7 * first, (first, last)  # measured: 4.84 -> 2.94
