"""data.prepare: content-hashed processed shards and splits, JSONL, BPE, bad data, rank shards."""

import json
import os

import pytest
import torch
from conftest import base_config

from cotrain_core import corpus, data, tokenizer
from cotrain_core.config import config_from_dict

TEXT = "The quick brown fox jumps over the lazy dog. " * 400  # ~18 KB


def _cfg(tmp_path, data_path="", **data_kw):
    raw = base_config(tmp_path, data={"data_path": str(data_path), "seq_length": 32, **data_kw})
    raw["run"]["storage_root"] = str(tmp_path / "storage")
    return config_from_dict(raw)


def _mtimes(*dirs):
    return {p: p.stat().st_mtime_ns for d in dirs for p in sorted(d.iterdir())}


def test_processed_shards_and_splits_are_written_once_and_reused(tmp_path):
    src = tmp_path / "corpus.txt"
    src.write_text(TEXT)
    first = data.prepare(_cfg(tmp_path, src))
    root = tmp_path / "storage" / "datasets"
    assert first.processed_dir.parent == root / "processed" and first.splits_dir.parent == root / "splits"
    assert not first.reused and {p.name for p in first.processed_dir.iterdir()} == {"tokens.npy", "meta.json"}
    assert {p.name for p in first.splits_dir.iterdir()} == {"train.npy", "validation.npy", "meta.json"}
    before = _mtimes(first.processed_dir, first.splits_dir)

    second = data.prepare(_cfg(tmp_path, src))
    assert second.reused and _mtimes(second.processed_dir, second.splits_dir) == before
    assert torch.equal(first.train, second.train) and torch.equal(first.val, second.val)
    assert not [p for p in (root / "processed").iterdir() if ".tmp-" in p.name]

    # byte tokens: [bos] + bytes + [eos]; the last 5% are validation; windows of L+1 tile the stream
    n = len(TEXT) + 2
    n_val = int(n * 0.05)
    assert first.stats["n_val_tokens"] == n_val and first.stats["n_train_tokens"] == n - n_val
    assert first.train.shape == ((n - n_val - 1) // 32, 33) and first.train.dtype == torch.long
    assert first.train[0, 0] == tokenizer.BOS and bytes(first.train[0, 1:].tolist()) == TEXT[:32].encode()
    assert (first.vocab_size, first.pad_id, first.mask_id, first.tokenizer_path) == (260, 256, 259, None)

    # another split or other text is another key; the processed shards are shared by both splits
    third = data.prepare(_cfg(tmp_path, src, validation_split=0.1))
    assert third.processed_dir == first.processed_dir and third.splits_dir != first.splits_dir
    src.write_text(TEXT + "more")
    assert data.prepare(_cfg(tmp_path, src)).processed_dir != first.processed_dir


def test_default_storage_is_next_to_the_checkpoints_and_builtin_corpus_is_unchanged(tmp_path):
    cfg = config_from_dict(base_config(tmp_path))  # no storage_root, data_path ""
    prepared = data.prepare(cfg)
    assert prepared.processed_dir.parents[2] == tmp_path / "cotrain-data"
    assert prepared.stats["source"] == "built-in corpus"
    tokens = tokenizer.encode(corpus.builtin_corpus())  # same stream and split as the in-memory legacy path
    legacy = data.split_tokens(tokens, 64, 8)
    assert torch.equal(prepared.train, data.windows(legacy.train, 64))
    assert torch.equal(prepared.val, data.windows(legacy.val, 64))


def test_jsonl_and_directories(tmp_path):
    raw = tmp_path / "storage" / "datasets" / "raw" / "set"
    raw.mkdir(parents=True)
    lines = [json.dumps({"text": f"document {i}: " + TEXT[: 200 + i], "id": i}) for i in range(60)]
    (raw / "b.jsonl").write_text("\n".join(lines[:30]) + "\n\n")
    (raw / "a.jsonl").write_text("\n".join(lines[30:]))
    (raw / "notes.md").write_text("ignored")
    prepared = data.prepare(_cfg(tmp_path, "set"))  # relative: under <storage_root>/datasets/raw
    stream = torch.cat([prepared.train[:, :-1].flatten()])
    assert prepared.stats["n_documents"] == 60
    first = json.loads(lines[30])["text"].encode()  # a.jsonl comes first (sorted)
    assert stream[0] == tokenizer.BOS and bytes(stream[1 : 1 + len(first)].tolist()) == first
    assert stream[1 + len(first)] == tokenizer.EOS and stream[2 + len(first)] == tokenizer.BOS

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "no"}\n')
    with pytest.raises(data.DataError, match=r'^data\.data_path: .*bad\.jsonl:2: no string "text" field'):
        data.prepare(_cfg(tmp_path, bad))
    bad.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(data.DataError, match=r"bad\.jsonl:2: not valid JSON"):
        data.prepare(_cfg(tmp_path, bad))


def test_bpe_is_trained_deterministically_and_cached_with_the_data(tmp_path):
    src = tmp_path / "corpus.txt"
    src.write_text(corpus.builtin_corpus(60_000))
    a = data.prepare(_cfg(tmp_path, src, tokenizer="bpe", vocab_size=400))
    b = data.prepare(_cfg(tmp_path / "other", src, tokenizer="bpe", vocab_size=400))  # fresh storage root
    assert not b.reused and a.processed_dir.name == b.processed_dir.name
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val)
    assert (a.tokenizer_path and open(a.tokenizer_path).read()) == open(b.tokenizer_path).read()
    assert a.vocab_size == 400 == a.tokenizer_info["vocab_size"] and a.tokenizer_info["type"] == "cotrain-bpe"
    assert (a.pad_id, a.mask_id) == (0, 3) and int(a.train.max()) < 400
    assert a.train.numel() < data.prepare(_cfg(tmp_path, src)).train.numel() / 2  # bpe compresses
    # the saved tokenizer reproduces the stream
    codec = tokenizer.load_codec(a.tokenizer_info, a.processed_dir)
    stream = codec.encode_documents([src.read_text()])
    assert torch.equal(a.train[0], torch.from_numpy(stream[:33].astype("int64")))
    assert codec.tokenizer.decode(stream[1:-1].tolist()) == src.read_text()  # byte-level BPE is lossless


@pytest.mark.parametrize("kind", ["byte", "bpe"])
def test_text_that_spells_a_special_token_is_text(tmp_path, kind):
    import numpy as np

    src = tmp_path / "corpus.txt"
    src.write_text(corpus.builtin_corpus(30_000) + " the <eos> and <mask> tags <pad><bos>")
    p = data.prepare(_cfg(tmp_path, src, tokenizer=kind, vocab_size=400))
    stream = np.concatenate([np.load(p.splits_dir / "train.npy"), np.load(p.splits_dir / "validation.npy")])
    ids = p.tokenizer_info["special_tokens"]
    assert np.isin(stream, list(ids.values())).sum() == 2  # the one document's [bos] and [eos]
    assert (stream[0], stream[-1]) == (ids["bos"], ids["eos"])
    codec = tokenizer.load_codec(p.tokenizer_info, p.processed_dir)  # a tokenizer loaded again: the same
    encoded = codec.encode_documents(["a <eos> b <mask>"]).tolist()
    assert not set(encoded[1:-1]) & set(ids.values())


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "file not found"),
        (b"", "file is empty"),
        (b"   \n\n", "file is empty"),
        (b"short text", "too short"),
        (b"x" * 200, "too short"),  # a validation window, but fewer than batch_size training windows
        (b"abc \xff\xfe def" * 100, "is not UTF-8 text"),
    ],
    ids=["missing", "empty", "blank", "tiny", "short", "not utf-8"],
)
def test_bad_data_is_a_data_error_naming_the_path(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(data.DataError) as err:
        data.prepare(_cfg(tmp_path, path))
    assert str(err.value).startswith("data.data_path:") and message in str(err.value)
    assert str(path) in str(err.value)


def test_a_relative_data_path_may_not_lead_out_of_datasets_raw_through_a_link(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text(TEXT)
    raw = tmp_path / "storage" / "datasets" / "raw"
    (raw / "folder").mkdir(parents=True)
    (raw / "file.txt").symlink_to(outside)
    (raw / "folder" / "part.txt").symlink_to(outside)
    (raw / "inside.txt").write_text(TEXT)
    (raw / "alias.txt").symlink_to(raw / "inside.txt")

    for path in ("file.txt", "folder"):
        with pytest.raises(data.DataError, match="outside .*datasets/raw"):
            data.prepare(_cfg(tmp_path, path))
    assert data.prepare(_cfg(tmp_path, "alias.txt")).vocab_size > 0  # a link that stays inside


def test_unreadable_file_and_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="no .txt or .jsonl files in directory"):
        data.prepare(_cfg(tmp_path, tmp_path / "empty"))
    if os.geteuid() != 0:
        path = tmp_path / "secret.txt"
        path.write_text(TEXT)
        path.chmod(0)
        with pytest.raises(data.DataError, match="cannot read"):
            data.prepare(_cfg(tmp_path, path))


def test_rank_indices_are_disjoint_and_cover_the_global_batch():
    order = data.epoch_order(100, epoch=2, seed=7)
    assert torch.equal(order, data.epoch_order(100, epoch=2, seed=7))
    assert not torch.equal(order, data.epoch_order(100, epoch=3, seed=7))
    for pos in range(100 // 12):
        shards = [data.rank_indices(order, pos, 6, rank, 2) for rank in range(2)]
        assert len(shards[0]) == len(shards[1]) == 6
        assert not set(shards[0].tolist()) & set(shards[1].tolist())
        assert torch.equal(torch.cat(shards), order[pos * 12 : (pos + 1) * 12])
    with pytest.raises(IndexError):
        data.rank_indices(order, 100 // 12, 6, 1, 2)  # past the last full global batch
