"""Processed shards and splits (cached on disk), windows and data order.

Public API:
    prepare(cfg: Config) -> Prepared                 # raises DataError (exit 3)
    Prepared: train LongTensor [N_train, L+1], val LongTensor [N_val, L+1], vocab_size, pad_id, mask_id,
              tokenizer_info (dict, saved as cotrain_tokenizer.json with the final model),
              tokenizer_path (bpe tokenizer.json to copy next to it, else None),
              processed_dir, splits_dir, reused (True when both were found in the cache),
              fingerprint (the split key, below), validation_path (<splits_dir>/validation.npy)
    epoch_order(n_windows: int, epoch: int, seed: int) -> LongTensor [n_windows]
    rank_indices(order, step_in_epoch: int, per_rank_batch: int, rank: int, world_size: int) -> LongTensor
    storage_root(cfg) -> Path
Raw text comes from corpus.py, token ids from tokenizer.py.

Storage (storage_root(cfg) = run.storage_root, or <checkpoint.output_path>/../cotrain-data):
    datasets/processed/<key>/  tokens.npy (uint16 stream), meta.json, tokenizer.json (bpe)
                               key = sha256(format, tokenizer settings, every input file's bytes)
    datasets/splits/<key>/     train.npy, validation.npy (uint16 streams), meta.json
                               key = sha256(processed key, validation_split, seq_length)
The full split key is the data fingerprint of a run (`done` event, model card): it covers the source
bytes in order, the tokenizer settings, validation_split and seq_length, and no path or machine.
Both are written once (temporary directory, then rename) and reused when present; concurrent
writers are safe (the loser of the rename uses the winner's copy).
Split: the last validation_split of the tokens (at least one window) are validation, the rest training.
Windows are seq_length+1 tokens with stride seq_length, so they tile each split and every next-token
pair is trained on exactly once per epoch.
Order: epoch_order() shuffles window indices from (seed, epoch). Global batch b of an epoch is
order[b*B:(b+1)*B] (B = train.batch_size), and rank r of W takes its r-th contiguous slice of
B/W windows (rank_indices), so the ranks read disjoint shards that together are the global batch.
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import DataError, builtin_corpus, parse_documents, read_bytes, resolve_data_path, source_files
from .tokenizer import TOKENIZER_INFO, Codec, bpe_info, train_bpe

# 2: text that spells a special token ("<eos>") is encoded as plain text by bpe too, as by byte
FORMAT_VERSION = 2


@dataclass
class Prepared:
    train: object  # LongTensor [N_train, L+1]
    val: object  # LongTensor [N_val, L+1]
    vocab_size: int
    pad_id: int
    mask_id: int
    tokenizer_info: dict
    tokenizer_path: str | None
    processed_dir: Path
    splits_dir: Path
    reused: bool
    stats: dict = field(default_factory=dict)  # n_train_tokens, n_val_tokens, n_documents, source
    fingerprint: str = ""  # full sha256 split key: source bytes, tokenizer, validation_split, seq_length

    @property
    def validation_path(self) -> Path:
        """The held-out split as evaluate.py reads it (its meta.json, with the tokenizer, is beside it)."""
        return self.splits_dir / "validation.npy"


def storage_root(cfg) -> Path:
    if cfg.run.storage_root:
        return Path(cfg.run.storage_root).resolve()
    return Path(cfg.checkpoint.output_path).resolve().parent / "cotrain-data"


def _publish(dest: Path, write) -> bool:
    """Run write(tmp_dir) and rename tmp_dir to dest; False if dest already existed (then unchanged)."""
    if (dest / "meta.json").is_file():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        write(tmp)  # meta.json last
        if dest.exists() and not (dest / "meta.json").is_file():
            shutil.rmtree(dest, ignore_errors=True)  # incomplete leftover (not written by this module)
        try:
            os.rename(tmp, dest)
        except OSError:
            if (dest / "meta.json").is_file():
                return False  # another process published it first
            raise
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _process(cfg, root: Path) -> tuple[Path, dict, bool]:
    """Tokenize the source once into <root>/datasets/processed/<key>/. Returns (dir, meta, reused)."""
    import numpy as np

    d = cfg.data
    h = hashlib.sha256(f"cotrain-data-v{FORMAT_VERSION}\n".encode())
    h.update((f"bpe:{d.vocab_size}" if d.tokenizer == "bpe" else "byte").encode() + b"\n")
    if d.data_path:
        storage = Path(cfg.run.storage_root) if cfg.run.storage_root else None
        path = resolve_data_path(d.data_path, storage)
        # A relative path (what the platform writes) stays inside datasets/raw; an absolute one is
        # the choice of whoever wrote the config by hand.
        relative = storage is not None and not Path(d.data_path).is_absolute()
        confine = storage / "datasets" / "raw" if relative else None
        files = [(f, read_bytes(f)) for f in source_files(path, confine)]
        source = str(path.resolve())
        for f, raw in files:
            h.update(f"{'jsonl' if f.suffix == '.jsonl' else 'text'} {len(raw)}\n".encode() + raw)
    else:
        files, source = None, "built-in corpus"
        corpus = builtin_corpus()
        h.update(b"builtin\n" + corpus.encode())
    key = h.hexdigest()
    dest = root / "datasets" / "processed" / key[:24]
    if (dest / "meta.json").is_file():
        return dest, json.loads((dest / "meta.json").read_text()), True

    if files is None:
        docs = [corpus]
    else:
        docs = [doc for f, raw in files for doc in parse_documents(f, raw)]
        if not docs:
            raise DataError(f"data.data_path: file is empty (no text): {source}")
    tok = train_bpe(docs, d.vocab_size) if d.tokenizer == "bpe" else None
    info = bpe_info(tok, d.vocab_size) if tok else dict(TOKENIZER_INFO)
    tokens = Codec(info, tok).encode_documents(docs)
    meta = {
        "format": FORMAT_VERSION,
        "sha256": key,
        "source": source,
        "files": [str(f.resolve()) for f, _ in files] if files else [],
        "n_documents": len(docs),
        "n_tokens": int(len(tokens)),
        "dtype": "uint16",
        "tokenizer": info,
    }

    def write(tmp: Path):
        np.save(tmp / "tokens.npy", tokens)
        if tok is not None:
            tok.save(str(tmp / "tokenizer.json"))
        _write_json(tmp / "meta.json", meta)

    reused = not _publish(dest, write)
    if reused:  # lost a race: use the published copy
        meta = json.loads((dest / "meta.json").read_text())
    return dest, meta, reused


def split_key(processed_key: str, validation_split: float, seq_length: int) -> str:
    """sha256 naming a split (its first 24 hex digits) and fingerprinting a run's data (all 64)."""
    return hashlib.sha256(f"{processed_key} {validation_split!r} {seq_length}".encode()).hexdigest()


def _split(cfg, processed: Path, pmeta: dict, root: Path) -> tuple[Path, dict, bool]:
    """Cut the token stream into train / validation once, in <root>/datasets/splits/<key>/."""
    import numpy as np

    d = cfg.data
    L = d.seq_length
    key = split_key(pmeta["sha256"], d.validation_split, L)
    dest = root / "datasets" / "splits" / key[:24]
    if (dest / "meta.json").is_file():
        return dest, json.loads((dest / "meta.json").read_text()), True
    tokens = np.load(processed / "tokens.npy")
    n = len(tokens)
    n_val = max(int(n * d.validation_split + 1e-9), L + 1)
    if n - n_val < L + 1:
        raise DataError(
            f"data.data_path: too short: {n} tokens ({pmeta['source']}) cannot hold a validation window and "
            f"a training window of {L + 1} tokens (lower data.seq_length or add text)"
        )
    meta = {
        "format": FORMAT_VERSION,
        "processed": pmeta["sha256"],
        "processed_dir": str(processed),
        "source": pmeta["source"],
        "validation_split": d.validation_split,
        "seq_length": L,
        "n_train_tokens": n - n_val,
        "n_val_tokens": n_val,
        "dtype": "uint16",
        "tokenizer": pmeta["tokenizer"],
    }

    def write(tmp: Path):
        np.save(tmp / "train.npy", tokens[:-n_val])
        np.save(tmp / "validation.npy", tokens[-n_val:])
        _write_json(tmp / "meta.json", meta)

    reused = not _publish(dest, write)
    if reused:
        meta = json.loads((dest / "meta.json").read_text())
    return dest, meta, reused


def prepare(cfg) -> Prepared:
    """Processed shards, splits and windows for a config (cached under storage_root(cfg))."""
    import numpy as np

    root = storage_root(cfg)
    try:
        processed, pmeta, reused_p = _process(cfg, root)
        splits, smeta, reused_s = _split(cfg, processed, pmeta, root)
        train_tokens = np.load(splits / "train.npy")
        val_tokens = np.load(splits / "validation.npy")
    except OSError as e:
        raise DataError(f"data.data_path: cannot write or read processed data under {root}: {e}") from None
    L, B = cfg.data.seq_length, cfg.train.batch_size
    have = num_windows(len(train_tokens), L)
    if have < B:
        raise DataError(
            f"data.data_path: too short: {pmeta['source']} gives {pmeta['n_tokens']} tokens, {have} training "
            f"windows of {L + 1} tokens; need at least train.batch_size={B} (add text, or lower "
            f"data.seq_length / train.batch_size)"
        )
    info = pmeta["tokenizer"]
    tokenizer_path = str(processed / info["file"]) if info["type"] == "cotrain-bpe" else None
    return Prepared(
        train=windows(train_tokens, L),
        val=windows(val_tokens, L),
        vocab_size=info["vocab_size"],
        pad_id=info["special_tokens"]["pad"],
        mask_id=info["special_tokens"]["mask"],
        tokenizer_info=info,
        tokenizer_path=tokenizer_path,
        processed_dir=processed,
        splits_dir=splits,
        reused=reused_p and reused_s,
        stats={
            "source": pmeta["source"],
            "n_documents": pmeta["n_documents"],
            "n_train_tokens": int(len(train_tokens)),
            "n_val_tokens": int(len(val_tokens)),
        },
        fingerprint=split_key(pmeta["sha256"], cfg.data.validation_split, L),
    )


# ---------------------------------------------------------------- windows and order


@dataclass(frozen=True)
class Splits:  # legacy (token lists of split_tokens)
    train: list[int]
    val: list[int]


def num_windows(n_tokens: int, seq_length: int) -> int:
    return max(0, (n_tokens - 1) // seq_length)


def split_tokens(
    tokens: list[int], seq_length: int, batch_size: int, validation_split: float = 0.05
) -> Splits:
    """Legacy in-memory split: last validation_split of the tokens (at least one window) for validation."""
    n_val = max(int(len(tokens) * validation_split + 1e-9), seq_length + 1)
    train, val = tokens[:-n_val], tokens[-n_val:]
    have = num_windows(len(train), seq_length)
    if have < batch_size:
        need = batch_size * seq_length + 1 + n_val
        raise DataError(
            f"data.data_path: too short: {len(tokens)} tokens give {have} training windows of "
            f"{seq_length + 1} tokens, need at least train.batch_size={batch_size} "
            f"(about {need} bytes of text, or lower data.seq_length / train.batch_size)"
        )
    return Splits(train=train, val=val)


def windows(tokens, seq_length: int):
    """LongTensor [n_windows, seq_length + 1] of overlapping-by-one windows of a token list / array."""
    import numpy as np
    import torch

    n = num_windows(len(tokens), seq_length)
    t = torch.from_numpy(np.asarray(tokens[: n * seq_length + 1], dtype=np.int64))  # [n*L + 1]
    return t.unfold(0, seq_length + 1, seq_length).contiguous()  # [n, L+1]


def epoch_order(n_windows: int, epoch: int, seed: int):
    """Shuffled window indices for a 0-based epoch; depends only on (seed, epoch)."""
    import torch

    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)
    return torch.randperm(n_windows, generator=g)  # [n_windows]


def rank_indices(order, step_in_epoch: int, per_rank_batch: int, rank: int, world_size: int):
    """Window indices of rank `rank` for 0-based batch `step_in_epoch` of an epoch's order.

    The global batch is order[pos*B:(pos+1)*B] with B = per_rank_batch * world_size; rank r takes
    its r-th contiguous slice of per_rank_batch indices.
    """
    B = per_rank_batch * world_size
    start = step_in_epoch * B + rank * per_rank_batch
    if not 0 <= rank < world_size or start + per_rank_batch > len(order):
        raise IndexError(
            f"batch {step_in_epoch} rank {rank}/{world_size} is outside an epoch of {len(order)}"
        )
    return order[start : start + per_rank_batch]  # [per_rank_batch]
