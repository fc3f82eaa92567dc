"""Evaluate a final model saved by the trainer on a split or on raw text; prints one `eval` event.

    python -m cotrain_core.evaluate --model <final model dir> --data <split .npy|split dir|.txt/.jsonl/dir>
        [--batch-size 8] [--max-windows 512] [--seq-length N] [--seed N] [--mlm-probability P]

Public API:
    main(argv: list[str] | None = None) -> int                    # exit code
    write_model_info(final_dir, cfg, prepared, step: int) -> None   # train.py: after save_pretrained
    evaluate_model(model_dir, data, batch_size=8, max_windows=None (512), seq_length=None,
                   seed=None (objective.EVAL_SEED), mlm_probability=None) -> dict   # the eval event's fields

The model dir holds config.json + model.safetensors (save_pretrained), cotrain_tokenizer.json (the
tokenizer info of data.prepare), tokenizer.json for a bpe tokenizer, and cotrain_model.json (family,
seq_length, mlm_probability, step), all written by write_model_info(). It is loaded with
AutoModelForCausalLM (llama) or AutoModelForMaskedLM (bert), and the same objective as in training is
computed in fp32 with objective.evaluate_windows (masked LM: masks from the fixed seed), over the first
--max-windows windows (default 512 like the trainer's eval; 0 = all). --data is a split file written
by data.prepare (`validation.npy` / `train.npy`, or its directory = its validation split; its
tokenizer must be the model's), or raw text read like data.data_path and tokenized with the model's
tokenizer (all of it, no split).

stdout: one JSON line {"v": 1, "event": "eval", "step": <model step or null>, "loss", "perplexity",
"accuracy"}; on failure an `error` event instead. Exit codes: 0 ok, 2 bad arguments (the message
starts with the argument, e.g. `--model: ...`), 3 unreadable or too little data (`--data: ...`),
1 anything else.
"""

import argparse
import json
import os
import shutil
import sys
import traceback
from pathlib import Path

from .data import DataError, load_codec, num_windows, read_documents, windows
from .events import Emitter
from .models import family as model_family

# objective.py (torch) is imported lazily: OMP_WAIT_POLICY must be set before torch loads (see main)
EXIT_OK, EXIT_RUNTIME, EXIT_ARGS, EXIT_DATA = 0, 1, 2, 3
MODEL_INFO = "cotrain_model.json"
TOKENIZER_INFO_FILE = "cotrain_tokenizer.json"
_FAMILIES = {"llama": "causal", "bert": "masked"}  # transformers model_type -> objective


class ArgumentError(Exception):
    """A bad argument; the message starts with the argument."""


def write_model_info(final_dir, cfg, prepared, step: int) -> None:
    """Write the cotrain files next to save_pretrained's: tokenizer info (+ tokenizer.json) and run info."""
    from .objective import EVAL_MAX_WINDOWS, EVAL_SEED

    final = Path(final_dir)
    final.mkdir(parents=True, exist_ok=True)
    (final / TOKENIZER_INFO_FILE).write_text(json.dumps(prepared.tokenizer_info, indent=2) + "\n")
    if prepared.tokenizer_path:
        shutil.copyfile(prepared.tokenizer_path, final / prepared.tokenizer_info["file"])
    info = {
        "model_type": cfg.model.type,
        "size": cfg.model.size,
        "family": model_family(cfg.model.type),
        "seq_length": cfg.data.seq_length,
        "mlm_probability": cfg.data.mlm_probability,
        "step": step,
        "eval_seed": EVAL_SEED,
        "eval_max_windows": EVAL_MAX_WINDOWS,
    }
    (final / MODEL_INFO).write_text(json.dumps(info, indent=2) + "\n")


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
    batch_size: int = 8,
    max_windows: int | None = None,
    seq_length: int | None = None,
    seed: int | None = None,
    mlm_probability: float | None = None,
) -> dict:
    """Fields of the eval event (step, loss, perplexity, accuracy) of a saved model on some data.
    max_windows None = objective.EVAL_MAX_WINDOWS (512, 0 = all); seed None = objective.EVAL_SEED."""
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


def _parse_args(argv):
    p = _Parser(prog="python -m cotrain_core.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="final model directory written by the trainer")
    p.add_argument("--data", required=True, help="split .npy / split dir, or .txt / .jsonl file or directory")
    p.add_argument("--batch-size", type=_positive("--batch-size"), default=8)
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
