"""Raw text: the built-in corpus and the documents of .txt / .jsonl files.

builtin_corpus(n_chars=320_000, seed=0) -> str   # deterministic English-like template text
resolve_data_path(data_path, storage) -> Path    # relative paths live under datasets/raw
source_files(path, confine=None) -> list[Path]   # a file, or every .txt/.jsonl under a directory
read_documents(path) -> list[str]                # .txt: one document; .jsonl: "text" per line

python -m cotrain_core.corpus            # prints built-in corpus stats and a sample
"""

import json
import random
from pathlib import Path


class DataError(Exception):
    """Unusable training data; the message names data.data_path (or the file)."""


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


def resolve_data_path(data_path: str, storage: Path | None) -> Path:
    """A relative data_path is taken under <storage_root>/datasets/raw when run.storage_root is set."""
    path = Path(data_path)
    if not path.is_absolute() and storage is not None:
        path = storage / "datasets" / "raw" / path
    return path


def source_files(path: Path, confine: Path | None = None) -> list[Path]:
    """The file itself, or every .txt / .jsonl file under a directory (sorted, hidden ones skipped).

    With `confine`, every file must lie inside it once symbolic links are followed: a link under
    datasets/raw must not hand the trainer a file from elsewhere on the machine."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix in (".txt", ".jsonl")
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise DataError(f"data.data_path: no .txt or .jsonl files in directory {path.resolve()}")
    else:
        raise DataError(f"data.data_path: file not found: {path.resolve()}")
    if confine is not None:
        root = confine.resolve()
        for f in files:
            if not f.resolve().is_relative_to(root):
                raise DataError(
                    f"data.data_path: {f} resolves to {f.resolve()}, outside {root} "
                    "(a symbolic link may not lead out of datasets/raw)"
                )
    return files


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"data.data_path: cannot read {path.resolve()}: {e.strerror}") from None


def parse_documents(path: Path, raw: bytes) -> list[str]:
    """Documents of one file: .jsonl has one {"text": ...} object per line; any other file is one text."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"data.data_path: {path.resolve()} is not UTF-8 text ({e.reason} at byte {e.start})"
        ) from None
    if path.suffix != ".jsonl":
        return [text] if text.strip() else []
    docs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"data.data_path: {path.resolve()}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise DataError(f'data.data_path: {path.resolve()}:{lineno}: no string "text" field')
        if obj["text"].strip():
            docs.append(obj["text"])
    return docs


def read_documents(path: Path) -> list[str]:
    """All documents under a file or directory; DataError when there is no text."""
    docs = []
    for f in source_files(path):
        docs += parse_documents(f, read_bytes(f))
    if not docs:
        raise DataError(f"data.data_path: file is empty (no text): {path.resolve()}")
    return docs


if __name__ == "__main__":
    from .tokenizer import VOCAB_SIZE, encode

    text = builtin_corpus()
    print(f"built-in corpus: {len(text)} chars, {len(encode(text))} tokens, vocab {VOCAB_SIZE}")
    print(text[:400])
