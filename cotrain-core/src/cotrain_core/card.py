"""The model card (README.md) of a final model directory, and the rows of its Evaluation section.

    from cotrain_core import card
    card.write(final_dir, cfg, prepared, step=200, parameters=468608, eval_metrics={...})  # export.py
    card.record_evaluation(final_dir, "wiki-test", {"step": 200, "loss": ..., ...})     # evaluate --card

Layout: YAML front matter (library_name, pipeline_tag, tags), a title, a table of facts (model,
parameters, tokenizer, sequence length, final step, data source, data fingerprint, tokens), a usage
snippet, the resolved training config as TOML, and "## Evaluation": one table row per evaluation set
between the markers below, `| set | step | loss | perplexity | accuracy |`. The trainer writes the row
`validation` (the run's held-out split); record_evaluation() replaces the row of its set or appends
one, leaving the others as they are, under a lock on the directory (concurrent evaluations are safe).
"""

import fcntl
import os
import re
import tempfile
from pathlib import Path

CARD = "README.md"
VALIDATION_SET = "validation"  # the row of the run's own held-out split
BEGIN, END = "<!-- cotrain:evaluation:begin -->", "<!-- cotrain:evaluation:end -->"
HEADER = "| set | step | loss | perplexity | accuracy |\n|---|---:|---:|---:|---:|"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_name(name: str) -> str:
    """An evaluation set's name as the card shows it: 1-100 of A-Z a-z 0-9 . _ -, not starting with . _ -"""
    if not NAME.fullmatch(name):
        raise ValueError(
            f"must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit, got {name!r}"
        )
    return name


def row(name: str, metrics: dict) -> str:
    step = "" if metrics.get("step") is None else str(metrics["step"])
    return (
        f"| {check_name(name)} | {step} | {metrics['loss']:.6f} | {metrics['perplexity']:.6g} "
        f"| {metrics['accuracy']:.6f} |"
    )


_EVALUATION = """## Evaluation

Mean loss of the training objective (causal LM: every next token; masked LM: the masked positions),
its perplexity e^loss and token accuracy, over at most 512 windows{windows}, computed in fp32.
`{validation}` is the run's held-out split; each other row is a named evaluation set, written by
`python -m cotrain_core.evaluate --model <this directory> --data <set> --card <name>`.

"""

_CARD = """---
library_name: transformers
pipeline_tag: {pipeline}
tags: [cotrain, {model_type}]
---

# {title}

A {model_type} {size} model trained from random initialisation by Cotrain (cotrain-core). The
tokenizer it was trained with is in this directory.

{facts}

The data fingerprint is the sha256 of the source bytes (in file order), the tokenizer settings,
`data.validation_split` and `data.seq_length` (docs/protocol.md in the Cotrain repository): the same
data and settings give the same fingerprint on any machine.

## Usage

```python
from transformers import {auto}, AutoTokenizer

tok = AutoTokenizer.from_pretrained("<this directory>")
model = {auto}.from_pretrained("<this directory>")
ids = tok("Anna sees the small cat.", return_tensors="pt").input_ids  # [bos] + text + [eos]
```

The tokenizer puts `<bos>` and `<eos>` around a text, as the training data had them; pass
`add_special_tokens=False` for the bare ids.

## Training config

The resolved config of the run (every key, defaults filled in):

```toml
{config}```

"""

_CLASSES = {"causal": ("text-generation", "AutoModelForCausalLM", "LlamaForCausalLM")}
_CLASSES["masked"] = ("fill-mask", "AutoModelForMaskedLM", "BertForMaskedLM")


def evaluation_section(rows: list[str], seq_length: int | None = None) -> str:
    windows = f" of {seq_length + 1} tokens" if seq_length else ""
    intro = _EVALUATION.format(windows=windows, validation=VALIDATION_SET)
    return intro + "\n".join([BEGIN, HEADER, *rows, END]) + "\n"


def render(cfg, prepared, *, step: int, parameters: int, eval_metrics: dict | None) -> str:
    from .config import to_toml
    from .models import family

    pipeline, auto, cls = _CLASSES[family(cfg.model.type)]
    stats = prepared.stats
    tokenizer = "byte (UTF-8 bytes + 4 specials)" if cfg.data.tokenizer == "byte" else "byte-level BPE"
    tokens = f"{stats.get('n_train_tokens', 0):,} / {stats.get('n_val_tokens', 0):,}"
    facts = [
        ("model", f"{cfg.model.type} {cfg.model.size} ({cls})"),
        ("parameters", f"{parameters:,}"),
        ("precision (training)", cfg.model.precision),
        ("tokenizer", f"{tokenizer}, {prepared.tokenizer_info['vocab_size']} ids"),
        ("sequence length", str(cfg.data.seq_length)),
        ("final step", str(step)),
        ("session", cfg.run.session_id),
        ("data source", stats.get("source", "")),
        ("data fingerprint", f"`{prepared.fingerprint}`"),
        ("training / held-out tokens", tokens),
    ]
    name = cfg.run.name.strip()
    text = _CARD.format(
        pipeline=pipeline,
        model_type=cfg.model.type,
        size=cfg.model.size,
        title=_cell(name.splitlines()[0] if name else cfg.run.session_id),
        facts="\n".join(["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in facts)]),
        auto=auto,
        config=to_toml(cfg),
    )
    rows = [row(VALIDATION_SET, {"step": step, **eval_metrics})] if eval_metrics else []
    return text + evaluation_section(rows, cfg.data.seq_length)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write(final_dir, cfg, prepared, *, step: int, parameters: int, eval_metrics: dict | None) -> None:
    text = render(cfg, prepared, step=step, parameters=parameters, eval_metrics=eval_metrics)
    (Path(final_dir) / CARD).write_text(text)


def record_evaluation(final_dir, name: str, metrics: dict) -> None:
    """Replace (or append) the row of evaluation set `name` in final_dir/README.md; other rows stay.
    A directory without a card, or a card without the markers, gets an Evaluation section appended."""
    new = row(name, metrics)
    final = Path(final_dir)
    fd = os.open(final, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # on the directory: the card itself is replaced by a rename
        path = final / CARD
        text = path.read_text() if path.is_file() else ""
        if BEGIN in text and END in text[text.index(BEGIN) :]:
            head, rest = text.split(BEGIN, 1)
            body, tail = rest.split(END, 1)
            rows = [line for line in body.splitlines() if line.startswith("| ") and not _is_header(line)]
            key = f"| {name} |"
            if any(r.startswith(key) for r in rows):
                rows = [new if r.startswith(key) else r for r in rows]
            else:
                rows.append(new)
            text = head + "\n".join([BEGIN, HEADER, *rows, END]) + tail
        else:
            text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + evaluation_section([new])
        tmp = tempfile.NamedTemporaryFile("w", dir=final, prefix=f".{CARD}.", delete=False)
        try:
            with tmp:
                tmp.write(text)
            os.chmod(tmp.name, 0o644)
            os.replace(tmp.name, path)
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
    finally:
        os.close(fd)  # releases the lock


def _is_header(line: str) -> bool:
    return line.startswith("| set |")
