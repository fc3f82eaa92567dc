"""Typed, validated run configuration loaded from TOML.

    from cotrain_core.config import load_config
    cfg = load_config("examples/tiny-llama.toml")   # raises ConfigError("train.learning_rate: ...")

Every problem is reported as a ConfigError whose message starts with the dotted key
(`train.batchsize: unknown key`). This module does not import torch, so bad configs fail fast.
"""

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

_REQUIRED = object()


class ConfigError(Exception):
    """A bad config file or value; the message starts with the dotted key."""


def _spec(default=_REQUIRED, *, choices=None, unsupported=None, gt=None, ge=None, le=None, nonempty=False):
    """A dataclass field carrying its validation rules in metadata."""
    rules = dict(choices=choices, unsupported=unsupported or {}, gt=gt, ge=ge, le=le, nonempty=nonempty)
    if default is _REQUIRED:
        return field(metadata=rules)
    return field(default=default, metadata=rules)


@dataclass(frozen=True)
class RunConfig:
    session_id: str = _spec(nonempty=True)
    final_path: str = _spec(nonempty=True)
    name: str = _spec("")  # free text, informational only


@dataclass(frozen=True)
class ModelConfig:
    type: str = _spec(
        choices=("llama2", "llama3"),
        unsupported={"bert": "bert is not supported yet (supported: llama2, llama3)"},
    )
    size: str = _spec(choices=("debug", "125M", "7B", "13B", "70B"))
    precision: str = _spec("fp32", choices=("fp32", "bf16", "fp16"))


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = _spec(8, gt=0)
    learning_rate: float = _spec(0.003, gt=0)
    epochs: int = _spec(1, gt=0)
    max_steps: int = _spec(0, ge=0)  # 0 = no cap
    optimizer: str = _spec("adamw", choices=("adam", "adamw", "sgd"))
    seed: int = _spec(1234, ge=0)


@dataclass(frozen=True)
class DistributedConfig:
    nodes: int = _spec(1, ge=1)
    gpus_per_node: int = _spec(1, ge=1)
    strategy: str = _spec("ddp", choices=("ddp", "fsdp", "diloco"))


@dataclass(frozen=True)
class DataConfig:
    seq_length: int = _spec(128, ge=8, le=4096)
    data_path: str = _spec("")  # "" = built-in corpus


@dataclass(frozen=True)
class CheckpointConfig:
    output_path: str = _spec(nonempty=True)
    interval: int = _spec(50, ge=0)  # steps between checkpoints, 0 = none


@dataclass(frozen=True)
class Config:
    run: RunConfig
    model: ModelConfig
    train: TrainConfig
    distributed: DistributedConfig
    data: DataConfig
    checkpoint: CheckpointConfig

    @property
    def world_size(self) -> int:
        return self.distributed.nodes * self.distributed.gpus_per_node


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"--config: cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config: {path} is not UTF-8 text") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config: invalid TOML in {path}: {e}") from None
    return config_from_dict(raw)


def config_from_dict(raw: dict) -> Config:
    """Validate a parsed TOML document (a dict of section tables)."""
    sections = typing.get_type_hints(Config)
    for name in raw:
        if name not in sections:
            raise ConfigError(f"{name}: unknown section (known: {', '.join(sections)})")
    built = {}
    for name, cls in sections.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{name}: must be a table ([{name}]), got {_show(table)}")
        built[name] = _section(name, cls, table)
    cfg = Config(**built)
    if cfg.world_size > 1:
        raise ConfigError(
            "distributed.nodes: multi-process training is not built yet (nodes x gpus_per_node must be 1)"
        )
    return cfg


def _section(section: str, cls, table: dict):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    types = typing.get_type_hints(cls)
    for key in table:
        if key not in fields:
            raise ConfigError(f"{section}.{key}: unknown key (known: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        key = f"{section}.{name}"
        if name not in table:
            if f.default is dataclasses.MISSING:
                raise ConfigError(f"{key}: required key is missing")
            continue
        values[name] = _check(key, table[name], types[name], f.metadata)
    return cls(**values)


def _check(key: str, value, typ: type, rules):
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if (typ is int and isinstance(value, bool)) or not isinstance(value, typ):
        raise ConfigError(f"{key}: must be {_TYPE_NAMES[typ]}, got {_show(value)}")
    if value in rules["unsupported"]:
        raise ConfigError(f"{key}: {rules['unsupported'][value]}")
    if rules["choices"] and value not in rules["choices"]:
        raise ConfigError(f"{key}: must be one of {', '.join(rules['choices'])}, got {_show(value)}")
    if rules["nonempty"] and not value.strip():
        raise ConfigError(f"{key}: must not be empty")
    if rules["gt"] is not None and not value > rules["gt"]:
        raise ConfigError(f"{key}: must be > {rules['gt']}, got {value}")
    if rules["ge"] is not None and not value >= rules["ge"]:
        raise ConfigError(f"{key}: must be >= {rules['ge']}, got {value}")
    if rules["le"] is not None and not value <= rules["le"]:
        raise ConfigError(f"{key}: must be <= {rules['le']}, got {value}")
    return value


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string"}


def _show(value) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "table", list: "array"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}"
