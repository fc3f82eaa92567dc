"""Evaluate a final model saved by the trainer on a split or on raw text; prints one `eval` event.

    python -m cotrain_core.evaluate --model <final model dir> --data <split .npy|split dir|.txt/.jsonl/dir>
        [--card NAME] [--batch-size N] [--max-windows 512] [--seq-length N] [--seed N] [--mlm-probability P]

Public API:
    main(argv: list[str] | None = None) -> int                    # exit code
    evaluate_model(model_dir, data, batch_size=None, max_windows=None (512), seq_length=None,
                   seed=None (objective.EVAL_SEED), mlm_probability=None) -> dict   # the eval event's fields

The model dir is what export.write_final wrote: config.json + model.safetensors (save_pretrained), the
HF tokenizer, cotrain_tokenizer.json (the tokenizer info of data.prepare) and cotrain_model.json
(family, seq_length, mlm_probability, step, eval batch size). It is loaded with AutoModelForCausalLM
(llama) or AutoModelForMaskedLM (bert), and the same objective as in training is computed in fp32
with objective.evaluate_windows (masked LM: masks from the fixed seed), over the first --max-windows
windows (default 512 like the trainer's eval; 0 = all), --batch-size windows at a time (default: the
run's train.batch_size, the trainer's eval batch). On the run's own split (the `done` event's
`validation_path`) this reproduces the trainer's final eval loss: bitwise for an fp32 run on CPU.
--data is a split file written by data.prepare (`validation.npy` / `train.npy`, or its directory =
its validation split; its tokenizer must be the model's), or raw text read like data.data_path
(a .txt file is one document, a .jsonl file one per line, a directory all of them) and tokenized
with the model's tokenizer (all of it, no split).

--card NAME also writes the result as the row NAME of the Evaluation section of <model>/README.md
(card.record_evaluation: the row of that name is replaced, other rows stay; NAME is 1-100 of
A-Z a-z 0-9 . _ -). The trainer writes the row `validation`.

stdout: one JSON line {"v": 1, "event": "eval", "step": <model step or null>, "loss", "perplexity",
"accuracy"}; on failure an `error` event instead. Exit codes: 0 ok, 2 bad arguments (the message
starts with the argument, e.g. `--model: ...`), 3 unreadable or too little data (`--data: ...`),
1 anything else.
"""

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from . import card
from .corpus import DataError, read_documents
from .data import num_windows, windows
from .events import Emitter
from .export import MODEL_INFO, TOKENIZER_INFO_FILE
from .tokenizer import load_codec

# objective.py (torch) is imported lazily: OMP_WAIT_POLICY must be set before torch loads (see main)
EXIT_OK, EXIT_RUNTIME, EXIT_ARGS, EXIT_DATA = 0, 1, 2, 3
_FAMILIES = {"llama": "causal", "bert": "masked"}  # transformers model_type -> objective


class ArgumentError(Exception):
    """A bad argument; the message starts with the argument."""


def _read_json(path: Path, arg: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ArgumentError(f"{arg}: cannot read {path}: {e}") from None


def _load_tokens(data: Path, tok_info: dict, model_dir: Path):
    """Tokens of --data: a split (.npy, or a split dir) or raw text tokenized with the model's tokenizer."""
    import numpy as np

    if data.is_dir() and (data / "meta.json").is_file() and (data / "validation.npy").is_file():
        data = data / "validation.npy"
    if data.suffix == ".npy":
        meta_path = data.parent / "meta.json"
        if meta_path.is_file():
            split_tok = _read_json(meta_path, "--data").get("tokenizer", {})
            keys = ("type", "vocab_size", "sha256")
            if any(split_tok.get(k) != tok_info.get(k) for k in keys):
                raise ArgumentError(
                    f"--data: {data} was tokenized with {split_tok.get('type')} (vocab "
                    f"{split_tok.get('vocab_size')}), the model uses {tok_info.get('type')} (vocab "
                    f"{tok_info.get('vocab_size')})"
                )
        try:
            return np.load(data)
        except FileNotFoundError:
            raise DataError(f"--data: file not found: {data.resolve()}") from None
        except (OSError, ValueError) as e:
            raise DataError(f"--data: cannot read {data.resolve()}: {e}") from None
    try:
        docs = read_documents(data)
    except DataError as e:
        raise DataError("--data:" + str(e).removeprefix("data.data_path:")) from None
    return load_codec(tok_info, model_dir).encode_documents(docs)


def evaluate_model(
    model_dir,
    data,
    batch_size: int | None = None,
    max_windows: int | None = None,
    seq_length: int | None = None,
    seed: int | None = None,
    mlm_probability: float | None = None,
) -> dict:
    """Fields of the eval event (step, loss, perplexity, accuracy) of a saved model on some data.
    max_windows None = objective.EVAL_MAX_WINDOWS (512, 0 = all); seed None = objective.EVAL_SEED;
    batch_size None = the run's eval batch (cotrain_model.json), else 8."""
    model_dir, data = Path(model_dir), Path(data)
    if not (model_dir / "config.json").is_file():
        raise ArgumentError(f"--model: {model_dir} has no config.json (not a save_pretrained directory)")
    if not (model_dir / TOKENIZER_INFO_FILE).is_file():
        raise ArgumentError(f"--model: {model_dir} has no {TOKENIZER_INFO_FILE} (not saved by cotrain-core)")
    config = _read_json(model_dir / "config.json", "--model")
    family = _FAMILIES.get(config.get("model_type"))
    if family is None:
        raise ArgumentError(f"--model: unsupported model_type {config.get('model_type')!r} (llama or bert)")
    tok_info = _read_json(model_dir / TOKENIZER_INFO_FILE, "--model")
    info = _read_json(model_dir / MODEL_INFO, "--model") if (model_dir / MODEL_INFO).is_file() else {}
    seq_length = seq_length or info.get("seq_length")
    if not seq_length:
        raise ArgumentError(f"--seq-length: required, {model_dir} has no {MODEL_INFO} that states it")
    mlm_probability = mlm_probability or info.get("mlm_probability", 0.15)
    batch_size = batch_size or info.get("eval_batch_size") or 8

    tokens = _load_tokens(data, tok_info, model_dir)
    if num_windows(len(tokens), seq_length) < 1:
        raise DataError(
            f"--data: too short: {len(tokens)} tokens in {data.resolve()}, one window needs {seq_length + 1}"
        )
    if int(tokens.max()) >= config["vocab_size"]:
        raise ArgumentError(
            f"--data: token id {int(tokens.max())} >= the model's vocab_size {config['vocab_size']}"
        )

    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    from .objective import EVAL_MAX_WINDOWS, EVAL_SEED, evaluate_windows

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(max(1, min(8, len(os.sched_getaffinity(0)))))
    auto = AutoModelForMaskedLM if family == "masked" else AutoModelForCausalLM
    model = auto.from_pretrained(model_dir, local_files_only=True, dtype=torch.float32)
    specials = tok_info["special_tokens"]
    metrics = evaluate_windows(
        model,
        windows(tokens, seq_length),
        family,
        mlm_probability,
        specials["pad"],
        specials["mask"],
        batch_size=batch_size,
        max_windows=EVAL_MAX_WINDOWS if max_windows is None else max_windows,
        seed=EVAL_SEED if seed is None else seed,
    )
    return {"step": info.get("step"), **metrics}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ArgumentError(f"arguments: {message}")


def _positive(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise ArgumentError(f"{name}: must be an integer, got {text!r}") from None
        if value < (0 if name == "--max-windows" else 1):
            raise ArgumentError(
                f"{name}: must be {'>= 0' if name == '--max-windows' else '> 0'}, got {value}"
            )
        return value

    return parse


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise ArgumentError(f"--mlm-probability: must be a number in (0, 1), got {text!r}")
    return value


def _card_name(text):
    try:
        return card.check_name(text)
    except ValueError as e:
        raise ArgumentError(f"--card: {e}") from None


def _parse_args(argv):
    p = _Parser(prog="python -m cotrain_core.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="final model directory written by the trainer")
    p.add_argument("--data", required=True, help="split .npy / split dir, or .txt / .jsonl file or directory")
    p.add_argument(
        "--card", type=_card_name, default=None, help="also write the result as row NAME of README.md"
    )
    p.add_argument("--batch-size", type=_positive("--batch-size"), default=None, help="default: the run's")
    p.add_argument(
        "--max-windows", type=_positive("--max-windows"), default=None, help="default 512, 0 = all"
    )
    p.add_argument("--seq-length", type=_positive("--seq-length"), default=None)
    p.add_argument("--seed", type=_positive("--seed"), default=None, help="masking seed (bert)")
    p.add_argument("--mlm-probability", type=_probability, default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    out = Emitter.take_stdout()
    try:
        args = _parse_args(argv)
        metrics = evaluate_model(
            args.model,
            args.data,
            batch_size=args.batch_size,
            max_windows=args.max_windows,
            seq_length=args.seq_length,
            seed=args.seed,
            mlm_probability=args.mlm_probability,
        )
        if args.card:
            card.record_evaluation(args.model, args.card, metrics)
        out.emit("eval", **metrics)
        return EXIT_OK
    except ArgumentError as e:
        out.error("config", str(e), retryable=False)
        return EXIT_ARGS
    except DataError as e:
        out.error("data", str(e), retryable=False)
        return EXIT_DATA
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        out.error("runtime", f"{type(e).__name__}: {e}", retryable=True)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
