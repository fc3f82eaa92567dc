"""Byte-level tokenizer, built-in corpus, text loading and train/validation windows.

    python -m cotrain_core.data            # prints built-in corpus stats and a sample

Tokens: ids 0..255 are raw UTF-8 bytes, then PAD=256, BOS=257, EOS=258 (VOCAB_SIZE=259).
A text becomes [BOS, bytes..., EOS]; the last 5% of tokens (at least one window) are the
validation split. Windows are seq_length+1 tokens with stride seq_length, so they tile the
stream and every next-token pair is trained on exactly once per epoch.
Only windows()/epoch_order() import torch, so data errors are found before torch loads.
"""

import random
from dataclasses import dataclass
from pathlib import Path

PAD, BOS, EOS = 256, 257, 258
VOCAB_SIZE = 259
TOKENIZER_INFO = {
    "type": "cotrain-bytes",
    "vocab_size": VOCAB_SIZE,
    "encoding": "utf-8",
    "byte_ids": "0-255",
    "special_tokens": {"pad": PAD, "bos": BOS, "eos": EOS},
    "text_format": "[bos] + utf8 bytes + [eos]",
}


class DataError(Exception):
    """Unusable training data; the message names data.data_path."""


def encode(text: str) -> list[int]:
    return [BOS, *text.encode("utf-8"), EOS]


def decode(ids) -> str:
    return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


_NAMES = ["anna", "ben", "clara", "david", "emma", "felix", "grace", "henry", "iris", "jonas", "lena", "max"]
_NOUNS = [
    "cat",
    "dog",
    "bird",
    "horse",
    "child",
    "farmer",
    "teacher",
    "river",
    "garden",
    "boat",
    "train",
    "book",
]
_ADJS = [
    "small",
    "old",
    "happy",
    "quiet",
    "red",
    "green",
    "tired",
    "brave",
    "young",
    "cold",
    "bright",
    "slow",
]
_VERBS = ["sees", "finds", "likes", "follows", "helps", "paints", "watches", "carries", "visits", "calls"]
_PLACES = ["park", "village", "forest", "kitchen", "market", "school", "station", "harbor", "hill", "library"]
_TIMES = ["in the morning", "at noon", "every day", "after dinner", "at night", "on sunday", "in winter"]
_TEMPLATES = [
    "{N} {V} the {A} {n} in the {P}.",
    "the {A} {n} {V} {N} {T}.",
    "{T}, {N} walks to the {P} and {V} a {A} {n}.",
    "{N} and {N2} go to the {P} {T}.",
    "the {n} is {A}, so {N} {V} it.",
    "when the {n} is {A}, {N} stays in the {P}.",
    "{N} says: the {n} in the {P} is very {A}.",
]


def builtin_corpus(n_chars: int = 320_000, seed: int = 0) -> str:
    """Deterministic English-like text from templates and small word lists (~n_chars chars)."""
    rng = random.Random(seed)
    parts, size = [], 0
    while size < n_chars:
        sentences = []
        for _ in range(rng.randint(3, 6)):
            s = rng.choice(_TEMPLATES).format(
                N=rng.choice(_NAMES),
                N2=rng.choice(_NAMES),
                n=rng.choice(_NOUNS),
                A=rng.choice(_ADJS),
                V=rng.choice(_VERBS),
                P=rng.choice(_PLACES),
                T=rng.choice(_TIMES),
            )
            sentences.append(s[0].upper() + s[1:])
        paragraph = " ".join(sentences) + "\n"
        parts.append(paragraph)
        size += len(paragraph)
    return "".join(parts)


def load_text(data_path: str) -> str:
    """The built-in corpus for "", else the UTF-8 text file at data_path."""
    if not data_path:
        return builtin_corpus()
    path = Path(data_path)
    if not path.is_file():
        raise DataError(f"data.data_path: file not found: {path.resolve()}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"data.data_path: {path.resolve()} is not UTF-8 text ({e.reason} at byte {e.start})"
        ) from None
    except OSError as e:
        raise DataError(f"data.data_path: cannot read {path.resolve()}: {e.strerror}") from None
    if not text.strip():
        raise DataError(f"data.data_path: file is empty: {path.resolve()}")
    return text


@dataclass(frozen=True)
class Splits:
    train: list[int]
    val: list[int]


def num_windows(n_tokens: int, seq_length: int) -> int:
    return max(0, (n_tokens - 1) // seq_length)


def split_tokens(tokens: list[int], seq_length: int, batch_size: int) -> Splits:
    """Last 5% (at least one window) for validation; the train part must fill one batch."""
    n_val = max(len(tokens) // 20, seq_length + 1)
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


def windows(tokens: list[int], seq_length: int):
    """Tensor [n_windows, seq_length + 1] of overlapping-by-one windows."""
    import torch

    n = num_windows(len(tokens), seq_length)
    t = torch.tensor(tokens[: n * seq_length + 1], dtype=torch.long)  # [n*L + 1]
    return t.unfold(0, seq_length + 1, seq_length).contiguous()  # [n, L+1]


def epoch_order(n_windows: int, epoch: int, seed: int):
    """Shuffled window indices for a 0-based epoch; depends only on (seed, epoch)."""
    import torch

    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)
    return torch.randperm(n_windows, generator=g)  # [n_windows]


if __name__ == "__main__":
    text = builtin_corpus()
    print(f"built-in corpus: {len(text)} chars, {len(encode(text))} tokens, vocab {VOCAB_SIZE}")
    print(text[:400])
