"""The final model directory: a Hugging Face model with the tokenizer it was trained with, and a card.

    from cotrain_core import export
    files = export.write_final(final_dir, save_model, cfg, prepared, step=200, parameters=468608,
                               eval_metrics={"loss": ..., "perplexity": ..., "accuracy": ...})
    # files: [{"name": "config.json", "bytes": 712}, ...] of the directory, sorted by name
    tok = export.hf_tokenizer(prepared.tokenizer_info, prepared.tokenizer_path, max_length=4096)

Layout of run.final_path (built in <final>.tmp-<pid>/, then swapped in whole, so the directory holds
exactly one export and never half of one):
    config.json, generation_config.json, model.safetensors   model.save_pretrained
    tokenizer.json, tokenizer_config.json   the trainer's tokenizer as a PreTrainedTokenizerFast:
                             AutoTokenizer.from_pretrained(dir) gives the ids of tokenizer.Codec, i.e.
                             tok(text).input_ids == [bos] + ids + [eos] (add_special_tokens=False:
                             the bare ids), and decode(ids, skip_special_tokens=True) == text
    cotrain_tokenizer.json   tokenizer info of data.prepare (type, vocab_size, special ids; bpe: sha256
                             of the trained tokenizer, which split meta.json files carry too)
    cotrain_model.json       model type/size/family, precision, seq_length, mlm_probability, step,
                             parameters, data_fingerprint, and the evaluation settings (seed, windows,
                             batch size) with which evaluate.py reproduces the trainer's eval loss
    README.md                the model card (card.py)

The byte tokenizer becomes a byte-level BPE without merges: the 256 byte symbols keep ids 0-255
(the GPT-2 byte-to-unicode alphabet), then <pad> <bos> <eos> <mask> = 256..259. The bpe tokenizer is
the trained tokenizers.Tokenizer itself. Both get a post-processor adding <bos> / <eos>, and text that
spells a special token is encoded as text (split_special_tokens), as tokenizer.Codec does.
"""

import json
import os
import shutil
from pathlib import Path

from . import card
from .models import family as model_family
from .tokenizer import BPE_SPECIAL_TOKENS

MODEL_INFO = "cotrain_model.json"
TOKENIZER_INFO_FILE = "cotrain_tokenizer.json"


def hf_tokenizer(tokenizer_info: dict, tokenizer_path: str | Path | None, max_length: int):
    """A transformers PreTrainedTokenizerFast that encodes exactly like tokenizer.load_codec(info)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    byte = tokenizer_info["type"] == "cotrain-bytes"
    if byte:
        alphabet = _bytes_to_unicode()
        tok = Tokenizer(models.BPE(vocab={alphabet[b]: b for b in range(256)}, merges=[]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in BPE_SPECIAL_TOKENS])
    else:
        tok = Tokenizer.from_file(str(tokenizer_path))
    ids = tokenizer_info["special_tokens"]
    names = dict(zip(("pad", "bos", "eos", "mask"), BPE_SPECIAL_TOKENS, strict=True))
    for key, name in names.items():
        if tok.token_to_id(name) != ids[key]:
            raise ValueError(f"tokenizer: {name} has id {tok.token_to_id(name)}, expected {ids[key]}")
    bos, eos = (names["bos"], ids["bos"]), (names["eos"], ids["eos"])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos[0]} $A {eos[0]}",
        pair=f"{bos[0]} $A {eos[0]} {bos[0]}:1 $B:1 {eos[0]}:1",
        special_tokens=[bos, eos],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=names["bos"],
        eos_token=names["eos"],
        pad_token=names["pad"],
        mask_token=names["mask"],
        model_max_length=max_length,
        clean_up_tokenization_spaces=False,  # decode must give the text back unchanged
        split_special_tokens=True,  # "<eos>" in a text is text, as in tokenizer.Codec
    )


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what the ByteLevel pre-tokenizer emits)."""
    printable = {*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)}
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def model_info(cfg, prepared, step: int, parameters: int) -> dict:
    """cotrain_model.json: what evaluate.py and the registry read besides the transformers files."""
    from .objective import EVAL_MAX_WINDOWS, EVAL_SEED

    return {
        "model_type": cfg.model.type,
        "size": cfg.model.size,
        "family": model_family(cfg.model.type),
        "precision": cfg.model.precision,
        "tokenizer": cfg.data.tokenizer,
        "seq_length": cfg.data.seq_length,
        "mlm_probability": cfg.data.mlm_probability,
        "step": step,
        "parameters": parameters,
        "data_fingerprint": prepared.fingerprint,
        "eval_seed": EVAL_SEED,
        "eval_max_windows": EVAL_MAX_WINDOWS,
        "eval_batch_size": cfg.train.batch_size,
    }


def write_model_info(final_dir, cfg, prepared, step: int, parameters: int | None = None) -> None:
    """The cotrain files and the HF tokenizer, next to save_pretrained's (no card: see write_final)."""
    final = Path(final_dir)
    final.mkdir(parents=True, exist_ok=True)
    (final / TOKENIZER_INFO_FILE).write_text(json.dumps(prepared.tokenizer_info, indent=2) + "\n")
    config = json.loads((final / "config.json").read_text())
    max_length = config.get("max_position_embeddings") or cfg.data.seq_length + 1
    hf_tokenizer(prepared.tokenizer_info, prepared.tokenizer_path, max_length).save_pretrained(final)
    info = model_info(cfg, prepared, step, parameters)
    (final / MODEL_INFO).write_text(json.dumps(info, indent=2) + "\n")


def list_files(directory) -> list[dict]:
    """[{"name": relative posix path, "bytes": size}] of every file under a directory, sorted by name."""
    root = Path(directory)
    files = [p for p in root.rglob("*") if p.is_file()]
    return sorted(
        ({"name": p.relative_to(root).as_posix(), "bytes": p.stat().st_size} for p in files),
        key=lambda f: f["name"],
    )


def save_model(module, gathered: dict | None, directory: Path) -> None:
    """save_pretrained of a model; of a sharded one (FSDP), a plain copy holding its gathered weights."""
    if gathered is not None:
        import torch
        from transformers import AutoConfig

        module.config.save_pretrained(directory)
        with torch.device("meta"):
            plain = type(module)(AutoConfig.from_pretrained(directory))
        plain.load_state_dict(gathered, assign=True)
        module = plain
    module.save_pretrained(directory)


def write_final(final_dir, save_model, cfg, prepared, *, step: int, parameters: int, eval_metrics: dict):
    """Write the whole final directory (save_model(dir) writes the transformers files) and swap it in
    place of run.final_path. Returns list_files() of the result."""
    final = Path(final_dir).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*final.parent.glob(f"{final.name}.tmp-*"), *final.parent.glob(f"{final.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
    tmp = final.parent / f"{final.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        save_model(tmp)
        write_model_info(tmp, cfg, prepared, step, parameters)
        card.write(tmp, cfg, prepared, step=step, parameters=parameters, eval_metrics=eval_metrics)
        if final.exists():
            old = final.parent / f"{final.name}.old-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return list_files(final)
