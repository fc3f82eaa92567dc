"""Tokenizers: byte level, or a byte-level BPE trained locally with the `tokenizers` library.

    special_ids(tokenizer: str) -> dict            # {"pad", "bos", "eos", "mask"} ids of "byte" / "bpe"
    codec = load_codec(tokenizer_info, directory)  # codec.encode_documents(list[str]) -> np.ndarray
    tok = train_bpe(docs, vocab_size); info = bpe_info(tok, vocab_size)

Byte tokenizer: ids 0..255 are raw UTF-8 bytes, then PAD=256, BOS=257, EOS=258, MASK=259
(VOCAB_SIZE=260). BPE: specials <pad>=0 <bos>=1 <eos>=2 <mask>=3, then the 256 byte symbols and the
merges (at most data.vocab_size ids; fewer when the text has no more pairs to merge). Each document
becomes [BOS] + ids + [EOS]; documents are concatenated into one token stream. Special ids come only
from that framing: text that spells a special token ("<eos>") is encoded as text by both tokenizers.
"""

import hashlib
from pathlib import Path

PAD, BOS, EOS, MASK = 256, 257, 258, 259
VOCAB_SIZE = 260
BPE_SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<mask>")  # ids 0..3 of a bpe tokenizer
TOKENIZER_INFO = {
    "type": "cotrain-bytes",
    "vocab_size": VOCAB_SIZE,
    "encoding": "utf-8",
    "byte_ids": "0-255",
    "special_tokens": {"pad": PAD, "bos": BOS, "eos": EOS, "mask": MASK},
    "text_format": "[bos] + utf8 bytes + [eos]",
}


def special_ids(tokenizer: str) -> dict:
    if tokenizer == "bpe":
        return {name: i for i, name in enumerate(("pad", "bos", "eos", "mask"))}
    return dict(TOKENIZER_INFO["special_tokens"])


def encode(text: str) -> list[int]:
    """One document as byte-tokenizer ids, framed by [bos] and [eos]."""
    return [BOS, *text.encode("utf-8"), EOS]


class Codec:
    """Encodes documents to one token stream: [bos] + ids + [eos] per document."""

    def __init__(self, info: dict, tokenizer=None):
        self.info, self.tokenizer = info, tokenizer  # tokenizer: tokenizers.Tokenizer for bpe
        self.ids = info["special_tokens"]
        if tokenizer is not None:  # "<eos>" in a document is text, never the special id (not saved in
            tokenizer.encode_special_tokens = True  # tokenizer.json: set again on every load)

    def encode_documents(self, docs: list[str]):
        import numpy as np

        if self.tokenizer is None:
            parts = [np.frombuffer(d.encode("utf-8"), dtype=np.uint8).astype(np.uint16) for d in docs]
        else:
            # no post-processor specials: an exported tokenizer.json adds [bos]/[eos] itself (export.py)
            encoded = self.tokenizer.encode_batch(docs, add_special_tokens=False)
            parts = [np.asarray(e.ids, dtype=np.uint16) for e in encoded]
        bos, eos = np.array([self.ids["bos"]], np.uint16), np.array([self.ids["eos"]], np.uint16)
        return np.concatenate([x for p in parts for x in (bos, p, eos)])  # [n_tokens] uint16


def train_bpe(docs: list[str], vocab_size: int):
    """A byte-level BPE trained on docs (deterministic for the same docs and vocab_size)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(BPE_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    return tok


def bpe_info(tok, requested: int) -> dict:
    text = tok.to_str()
    return {
        "type": "cotrain-bpe",
        "vocab_size": tok.get_vocab_size(),
        "requested_vocab_size": requested,
        "file": "tokenizer.json",
        "library": "tokenizers (byte-level BPE)",
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "special_tokens": special_ids("bpe"),
        "text_format": "[bos] + ids + [eos]",
    }


def load_codec(info: dict, directory: str | Path | None = None) -> Codec:
    """The codec of a saved tokenizer info (cotrain_tokenizer.json); bpe reads <directory>/tokenizer.json."""
    if info.get("type") == "cotrain-bytes":
        return Codec(info)
    if info.get("type") == "cotrain-bpe":
        from tokenizers import Tokenizer

        return Codec(info, Tokenizer.from_file(str(Path(directory) / info["file"])))
    raise ValueError(f"unknown tokenizer type {info.get('type')!r}")
