"""The final directory for the model registry: HF model + tokenizer, model card, files, data fingerprint."""

import json
import subprocess
import sys
import tomllib

import pytest
import torch
from conftest import base_config

from cotrain_core import card, corpus, data, export, models, tokenizer
from cotrain_core.config import config_from_dict, to_toml

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = [
    "Anna sees the small cat in the park.",
    " leading space,  two spaces\n\ttab and a trailing newline\n",
    "h\u00e9llo w\u00f6rld \u65e5\u672c\u8a9e \U0001f600 \u00a0nbsp",
    "text that spells <pad> <bos> <eos> <mask> is text",
    "",
]


def _cfg(tmp_path, model_type="llama2", storage="storage", **data_kw):
    raw = base_config(
        tmp_path,
        model={"type": model_type, "size": "debug"},
        data={"seq_length": 32, **data_kw},
    )
    raw["run"]["storage_root"] = str(tmp_path / storage)
    return config_from_dict(raw)


def _export(tmp_path, cfg, step=3):
    prepared = data.prepare(cfg)
    torch.manual_seed(0)
    model = models.build_model(cfg, prepared.vocab_size)
    metrics = {"loss": 2.5, "perplexity": 12.18, "accuracy": 0.25}
    files = export.write_final(
        cfg.run.final_path,
        model.save_pretrained,
        cfg,
        prepared,
        step=step,
        parameters=sum(p.numel() for p in model.parameters()),
        eval_metrics=metrics,
    )
    return prepared, model, files


@pytest.mark.parametrize("model_type,kind", [("llama2", "byte"), ("llama2", "bpe"), ("bert", "byte")])
def test_export_loads_with_transformers_and_tokenizes_like_the_trainer(tmp_path, model_type, kind):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    cfg = _cfg(tmp_path, model_type, tokenizer=kind, vocab_size=400)
    prepared, model, files = _export(tmp_path, cfg)
    final = tmp_path / "final"
    names = {f["name"] for f in files}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert {"README.md", "cotrain_model.json", "cotrain_tokenizer.json"} <= names
    assert not list(tmp_path.glob("final.*"))  # no temporary directory left beside it

    auto = AutoModelForMaskedLM if model_type == "bert" else AutoModelForCausalLM
    loaded = auto.from_pretrained(final, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(final, local_files_only=True)
    codec = tokenizer.load_codec(prepared.tokenizer_info, prepared.processed_dir)  # the trainer's own codec
    assert len(tok) == prepared.vocab_size == loaded.config.vocab_size
    for text in [*TEXTS, corpus.builtin_corpus(3000, seed=11)]:
        ids = tok(text).input_ids
        assert ids == codec.encode_documents([text]).tolist(), text
        assert tok.decode(ids, skip_special_tokens=True) == text
        assert tok(text, add_special_tokens=False).input_ids == ids[1:-1]
    ids = prepared.tokenizer_info["special_tokens"]
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.mask_token_id) == (
        ids["pad"],
        ids["bos"],
        ids["eos"],
        ids["mask"],
    )
    # the loaded model is the exported one
    batch = prepared.val[:2]  # [2, L+1]
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=batch).logits, model.eval()(input_ids=batch).logits)


def test_the_card_states_the_run_and_keeps_one_row_per_evaluation_set(tmp_path):
    cfg = _cfg(tmp_path)
    prepared, model, files = _export(tmp_path, cfg, step=3)
    final = tmp_path / "final"
    text = (final / "README.md").read_text()
    assert text.startswith("---\nlibrary_name: transformers\npipeline_tag: text-generation\n")
    params = sum(p.numel() for p in model.parameters())
    for fact in (f"| parameters | {params:,} |", "| final step | 3 |", prepared.fingerprint):
        assert fact in text
    toml = text.split("```toml\n", 1)[1].split("```", 1)[0]
    assert config_from_dict(tomllib.loads(toml)) == cfg  # the resolved config, loadable as it is
    assert "| validation | 3 | 2.500000 | 12.18 | 0.250000 |" in text

    a = {"step": 3, "loss": 1.25, "perplexity": 3.49, "accuracy": 0.5}
    card.record_evaluation(final, "wiki-test", a)
    card.record_evaluation(final, "validation", {**a, "loss": 2.0})
    card.record_evaluation(final, "wiki-test", {**a, "accuracy": 0.75})  # again: replaces its row
    rows = [line for line in (final / "README.md").read_text().splitlines() if line.startswith("| ")]
    rows = rows[rows.index("| set | step | loss | perplexity | accuracy |") + 1 :]
    assert rows == [
        "| validation | 3 | 2.000000 | 3.49 | 0.500000 |",
        "| wiki-test | 3 | 1.250000 | 3.49 | 0.750000 |",
    ]
    assert (final / "README.md").read_text().startswith(text.split("<!-- cotrain:evaluation:begin")[0])
    assert not [p for p in final.iterdir() if p.name.startswith(".")]  # no temporary card left

    # a directory without a card gets one with an Evaluation section
    bare = tmp_path / "bare"
    bare.mkdir()
    card.record_evaluation(bare, "set-1", {**a, "step": None})
    assert "| set-1 |  | 1.250000 | 3.49 | 0.500000 |" in (bare / "README.md").read_text()
    for bad in ("", "a|b", "two words", "-x", "x" * 101, "x\ny"):
        with pytest.raises(ValueError):
            card.record_evaluation(bare, bad, a)


def test_evaluate_card_flag_records_the_result(tmp_path):
    cfg = _cfg(tmp_path)
    prepared, _, _ = _export(tmp_path, cfg)
    final, held_out = tmp_path / "final", tmp_path / "datasets" / "held-out.txt"
    held_out.parent.mkdir()
    held_out.write_text(corpus.builtin_corpus(3000, seed=5))
    for name, source in (("held-out", held_out), ("validation", prepared.validation_path)):
        proc = _evaluate("--model", final, "--data", source, "--card", name)
        assert proc.returncode == 0, proc.stderr
        event = json.loads(proc.stdout)
        assert card.row(name, event) in (final / "README.md").read_text()
    proc = _evaluate("--model", final, "--data", held_out, "--card", "a b")
    assert proc.returncode == 2 and json.loads(proc.stdout)["message"].startswith("--card: must be")


def _evaluate(*args):
    cmd = [sys.executable, "-m", "cotrain_core.evaluate", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_replacing_an_export_leaves_only_the_new_files(tmp_path):
    cfg = _cfg(tmp_path)
    final = tmp_path / "final"
    final.mkdir()
    (final / "stale.bin").write_bytes(b"old")
    _, _, files = _export(tmp_path, cfg)
    assert not (final / "stale.bin").exists()
    assert files == export.list_files(final)
    assert all(f["bytes"] == (final / f["name"]).stat().st_size for f in files)


def test_the_data_fingerprint_depends_on_the_data_and_settings_not_the_place(tmp_path):
    here = data.prepare(_cfg(tmp_path, storage="a"))
    there = data.prepare(_cfg(tmp_path, storage="b"))
    assert here.fingerprint == there.fingerprint and len(here.fingerprint) == 64
    assert here.splits_dir != there.splits_dir and here.splits_dir.name == here.fingerprint[:24]
    others = [
        data.prepare(_cfg(tmp_path, storage="c", seq_length=48)),
        data.prepare(_cfg(tmp_path, storage="c", validation_split=0.1)),
        data.prepare(_cfg(tmp_path, storage="c", tokenizer="bpe", vocab_size=300)),
    ]
    assert len({here.fingerprint, *(p.fingerprint for p in others)}) == 4
    text = tmp_path / "one.txt"
    text.write_text(corpus.builtin_corpus())  # the same bytes as the built-in corpus, but from a file
    assert data.prepare(_cfg(tmp_path, storage="c", data_path=str(text))).fingerprint != here.fingerprint


def test_resolved_toml_round_trips(tmp_path):
    raw = base_config(tmp_path, train={"max_steps": 20}, checkpoint={"interval": 0})
    raw["run"]["name"] = 'quote " backslash \\ del \x7f tab \t \u00e9 \U0001f600'
    raw["distributed"].update(strategy="diloco", diloco={"inner_steps": 10, "outer_lr": 0.5})
    cfg = config_from_dict(raw)
    assert config_from_dict(tomllib.loads(to_toml(cfg))) == cfg
    ddp = config_from_dict(base_config(tmp_path))
    assert "[distributed.diloco]" not in to_toml(ddp)
    assert config_from_dict(tomllib.loads(to_toml(ddp))) == ddp
