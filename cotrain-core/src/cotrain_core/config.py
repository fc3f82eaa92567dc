"""Typed, validated run configuration loaded from TOML.

    from cotrain_core.config import load_config
    cfg = load_config("examples/tiny-llama.toml")   # raises ConfigError("train.learning_rate: ...")

    python -m cotrain_core.config > docs/schema/config-fields.json   # every key's type, default, rules

Public API:
    load_config(path: str | Path) -> Config
    read_config(path) -> (Config, {dotted key: value} of the keys left to their defaults)
    config_from_dict(raw: dict, name="run") -> Config   # name: session id when [run] leaves it out
    field_rules() -> dict               # {"train.batch_size": {"type": "int", "default": 8, "ge": 1, ...}}
    to_toml(cfg: Config) -> str         # the resolved config (every key, defaults filled in) as TOML
    class ConfigError(Exception)
    Config.world_size -> int            # nodes * gpus_per_node
    Config.per_rank_batch -> int        # train.batch_size // world_size
    Config.grad_accum_steps -> int      # per_rank_batch // train.micro_batch_size
    Config.islands -> int               # DiLoCo replicas: world_size // distributed.diloco.island_size

Every problem is reported as a ConfigError whose message starts with the dotted key
(`train.batchsize: unknown key`). Defaults that depend on other keys are resolved here, so a loaded
Config holds concrete values (train.micro_batch_size, train.weight_decay,
distributed.diloco.island_size); train.warmup stays -1
("auto") because it depends on the number of steps (see objective.lr_at).
This module does not import torch, so bad configs fail fast.

The field metadata below is the one definition of each key's limits, choices and default. The API's
request mirrors it; docs/schema/config-fields.json is its export, which a test here keeps current
and the API's tests compare with the request's bounds and defaults.
"""

import dataclasses
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

_REQUIRED = object()


class ConfigError(Exception):
    """A bad config file or value; the message starts with the dotted key."""


def _spec(
    default=_REQUIRED,
    *,
    choices=None,
    unsupported=None,
    gt=None,
    ge=None,
    lt=None,
    le=None,
    nonempty=False,
    auto=None,
    factory=None,
):
    """A dataclass field carrying its validation rules in metadata. `auto`: a value accepted besides
    the bounds, meaning "derived from other keys" (train.warmup = -1)."""
    rules = dict(
        choices=choices,
        unsupported=unsupported or {},
        gt=gt,
        ge=ge,
        lt=lt,
        le=le,
        nonempty=nonempty,
        auto=auto,
    )
    if factory is not None:
        return field(default_factory=factory, metadata=rules)
    if default is _REQUIRED:
        return field(metadata=rules)
    return field(default=default, metadata=rules)


@dataclass(frozen=True)
class RunConfig:
    # "" (the default) = derived: the config file's name, and <checkpoint.output_path>/../final/<session_id>
    session_id: str = _spec("", nonempty=True, auto="")
    final_path: str = _spec("", nonempty=True, auto="")
    name: str = _spec("")  # free text, informational only
    storage_root: str = _spec("")  # shared storage tree; "" = <checkpoint.output_path>/../cotrain-data


@dataclass(frozen=True)
class ModelConfig:
    type: str = _spec(choices=("llama2", "llama3", "bert"))
    size: str = _spec(choices=("debug", "125M", "1B", "7B", "13B", "70B"))
    precision: str = _spec("fp32", choices=("fp32", "bf16", "fp16"))
    compile: bool = _spec(False)  # torch.compile each decoder/encoder layer
    activation_checkpointing: bool = _spec(False)  # recompute each layer's activations in backward


_AUTO = -1  # sentinel of keys whose default depends on other keys
_AUTO_ZERO = 0  # the same for keys whose "auto" is 0
_MAX_STEPS = 10_000_000


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = _spec(8, gt=0, le=4096)  # global: sequences per optimizer step over all ranks
    micro_batch_size: int = _spec(0, gt=0, le=4096)  # default (0 internally): batch_size // world_size
    learning_rate: float = _spec(0.003, gt=0, le=10)
    warmup: int = _spec(_AUTO, ge=0, le=_MAX_STEPS, auto=_AUTO)  # -1 = auto: 10% of total steps, at most 100
    schedule: str = _spec("cosine", choices=("cosine", "linear", "constant"))
    epochs: int = _spec(1, gt=0, le=1000)
    max_steps: int = _spec(0, ge=0, le=_MAX_STEPS)  # 0 = no cap
    optimizer: str = _spec("adamw", choices=("adam", "adamw", "sgd"))
    weight_decay: float = _spec(float(_AUTO), ge=0, le=10)  # default: 0.01 for adamw, 0 for adam / sgd
    grad_clip: float = _spec(1.0, ge=0, le=1000)  # max gradient norm, 0 = off
    seed: int = _spec(1234, ge=0, le=2**31 - 1)


@dataclass(frozen=True)
class DilocoConfig:
    inner_steps: int = _spec(50, gt=0, le=100_000)
    outer_lr: float = _spec(0.7, gt=0, le=10)
    outer_momentum: float = _spec(0.5, ge=0, lt=1)
    nesterov: bool = _spec(True)
    # factor on train.learning_rate (its whole schedule) for the inner optimizer, whose replicas each
    # step on 1/replicas of the global batch; -1 = auto: 1/sqrt(replicas) (bench/quality.py)
    inner_lr_scale: float = _spec(float(_AUTO), gt=0, le=1)
    pseudo_grad_dtype: str = _spec("fp32", choices=("fp32", "bf16", "fp16"))
    # ranks that train one replica together (0 = auto: gpus_per_node, one island per node); must
    # divide the world size; 1 = every rank its own replica
    island_size: int = _spec(_AUTO_ZERO, ge=1, le=4096, auto=_AUTO_ZERO)
    inner_strategy: str = _spec("fsdp", choices=("fsdp", "ddp"))  # how an island trains its replica
    # streaming DiLoCo: parameter fragments synced on staggered schedules, each reduction applied
    # overlap_steps steps after it started, the model taking mixing * global + (1 - mixing) * local
    fragments: int = _spec(1, ge=1, le=1000)
    overlap_steps: int = _spec(0, ge=0, le=100_000)
    mixing: float = _spec(1.0, gt=0, le=1)
    quantization: str = _spec("none", choices=("none", "int8", "fp8"))  # pseudo-gradients, error feedback


@dataclass(frozen=True)
class DistributedConfig:
    nodes: int = _spec(1, ge=1, le=64)
    gpus_per_node: int = _spec(1, ge=1, le=64)
    strategy: str = _spec("ddp", choices=("ddp", "fsdp", "diloco"))
    diloco: DilocoConfig = _spec(factory=DilocoConfig)  # [distributed.diloco]; only with strategy diloco


@dataclass(frozen=True)
class DataConfig:
    seq_length: int = _spec(128, ge=8, le=4096)
    data_path: str = _spec("")  # "" = built-in corpus; a .txt/.jsonl file or a directory of them
    tokenizer: str = _spec("byte", choices=("byte", "bpe"))
    vocab_size: int = _spec(1024, ge=261, le=65536)  # bpe only: 256 bytes + 4 specials + >= 1 merge
    validation_split: float = _spec(0.05, gt=0, le=0.5)
    mlm_probability: float = _spec(0.15, gt=0, lt=1)  # bert only


@dataclass(frozen=True)
class CheckpointConfig:
    output_path: str = _spec(nonempty=True)
    interval: int = _spec(50, ge=0)  # steps between checkpoints, 0 = none
    keep_last: int = _spec(3, ge=1, le=1000)  # newest checkpoints kept
    keep_best: bool = _spec(True)  # also keep the checkpoint with the lowest eval loss


@dataclass(frozen=True)
class LoadConfig:
    # > 0: the load-generating mode (load.py): no model, `step` events at this rate for
    # train.max_steps steps; 0 (the value besides the bounds) trains
    events_per_second: float = _spec(0.0, gt=0, le=1000, auto=0.0)


@dataclass(frozen=True)
class Config:
    run: RunConfig
    model: ModelConfig
    train: TrainConfig
    distributed: DistributedConfig
    data: DataConfig
    checkpoint: CheckpointConfig
    load: LoadConfig = field(default_factory=LoadConfig)

    @property
    def world_size(self) -> int:
        return self.distributed.nodes * self.distributed.gpus_per_node

    @property
    def per_rank_batch(self) -> int:
        """Sequences each rank processes per optimizer step."""
        return self.train.batch_size // self.world_size

    @property
    def islands(self) -> int:
        """DiLoCo replicas (islands of distributed.diloco.island_size ranks)."""
        return self.world_size // self.distributed.diloco.island_size

    @property
    def grad_accum_steps(self) -> int:
        """Micro-batches (forward/backward passes) per rank per optimizer step."""
        return self.per_rank_batch // self.train.micro_batch_size


# sizes with published BERT dimensions (bert-base for 125M); the rest have none
BERT_SIZES = ("debug", "125M")


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    return read_config(path)[0]


def read_config(path: str | Path) -> tuple[Config, dict]:
    """Read and validate a TOML config file; returns (config, the keys it left to their defaults with
    the values they took, by dotted key). A config written by hand may leave out [run]: the session id
    is the file's name and the final model goes to <checkpoint.output_path>/../final/<session id>."""
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
    cfg = config_from_dict(raw, name=Path(path).stem)
    return cfg, defaulted(raw, cfg)


def config_from_dict(raw: dict, name: str = "run") -> Config:
    """Validate a parsed TOML document (a dict of section tables); `name` is the session id when
    run.session_id is left out."""
    sections = typing.get_type_hints(Config)
    for section in raw:
        if section not in sections:
            raise ConfigError(f"{section}: unknown section (known: {', '.join(sections)})")
    built = {}
    for section, cls in sections.items():
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: must be a table ([{section}]), got {_show(table)}")
        built[section] = _section(section, cls, table)
    cfg = Config(**built)
    _check_combinations(cfg, raw)
    return _resolve_defaults(cfg, name)


def defaulted(raw: dict, cfg: Config) -> dict:
    """{dotted key: value} of every key the document leaves out (what --dry-run reports)."""
    found = {}

    def walk(prefix: str, obj, table: dict) -> None:
        for f in dataclasses.fields(obj):
            value, given = getattr(obj, f.name), table.get(f.name) if isinstance(table, dict) else None
            key = f"{prefix}.{f.name}"
            if dataclasses.is_dataclass(value):
                if key != "distributed.diloco" or cfg.distributed.strategy == "diloco":
                    walk(key, value, given or {})
            elif given is None:
                found[key] = value

    for f in dataclasses.fields(cfg):
        walk(f.name, getattr(cfg, f.name), raw.get(f.name, {}))
    return found


def _check_combinations(cfg: Config, raw: dict) -> None:
    """Rules that involve more than one key; each message names the key to change."""
    m, t, d = cfg.model, cfg.train, cfg.distributed
    if m.type == "bert" and m.size not in BERT_SIZES:
        raise ConfigError(
            f"model.size: bert has no {m.size} preset (no published BERT of that size; "
            f"bert sizes: {', '.join(BERT_SIZES)})"
        )
    world = cfg.world_size
    if t.batch_size % world:
        raise ConfigError(
            f"train.batch_size: {t.batch_size} is the global batch and must be divisible by the world size "
            f"{world} (distributed.nodes x distributed.gpus_per_node)"
        )
    per_rank = t.batch_size // world
    if t.micro_batch_size and per_rank % t.micro_batch_size:
        raise ConfigError(
            f"train.micro_batch_size: {t.micro_batch_size} must divide the per-rank batch {per_rank} "
            f"(train.batch_size {t.batch_size} / world size {world})"
        )
    if cfg.load.events_per_second and t.max_steps == 0:
        raise ConfigError(
            "train.max_steps: the load generator ([load] events_per_second > 0) runs exactly "
            "train.max_steps steps and needs it >= 1"
        )
    if "diloco" in raw.get("distributed", {}) and d.strategy != "diloco":
        raise ConfigError(
            'distributed.diloco: only allowed with distributed.strategy = "diloco" '
            f"(strategy is {d.strategy!r})"
        )
    if d.strategy == "diloco":
        h = d.diloco.inner_steps
        if cfg.checkpoint.interval % h:
            raise ConfigError(
                f"checkpoint.interval: must be a multiple of distributed.diloco.inner_steps ({h}) under "
                f"diloco (checkpoints are written after an outer step), got {cfg.checkpoint.interval}"
            )
        if t.max_steps % h:
            raise ConfigError(
                f"train.max_steps: must be a multiple of distributed.diloco.inner_steps ({h}) under diloco, "
                f"got {t.max_steps}"
            )
        if d.diloco.fragments > h:
            raise ConfigError(
                f"distributed.diloco.fragments: {d.diloco.fragments} must be <= "
                f"distributed.diloco.inner_steps ({h}): each fragment syncs at its own step of the {h}"
            )
        if d.diloco.overlap_steps >= h:
            raise ConfigError(
                f"distributed.diloco.overlap_steps: {d.diloco.overlap_steps} must be < "
                f"distributed.diloco.inner_steps ({h}): a fragment's reduction ends before it starts again"
            )
        island = d.diloco.island_size or d.gpus_per_node
        if world % island:
            raise ConfigError(
                f"distributed.diloco.island_size: {island} must divide the world size {world} "
                "(distributed.nodes x distributed.gpus_per_node)"
            )


def _resolve_defaults(cfg: Config, name: str) -> Config:
    t, r, d = cfg.train, cfg.run, cfg.distributed
    changes = {}
    if t.micro_batch_size == 0:
        changes["micro_batch_size"] = cfg.per_rank_batch
    if t.weight_decay == _AUTO:
        changes["weight_decay"] = 0.01 if t.optimizer == "adamw" else 0.0
    diloco = d.diloco
    if diloco.island_size == _AUTO_ZERO:
        diloco = dataclasses.replace(diloco, island_size=d.gpus_per_node)
    if d.strategy == "diloco" and diloco.inner_lr_scale == _AUTO:
        replicas = cfg.world_size // diloco.island_size  # each steps on 1/replicas of the global batch
        diloco = dataclasses.replace(diloco, inner_lr_scale=1 / math.sqrt(replicas))
    session_id = r.session_id or name
    final_path = r.final_path or str(Path(cfg.checkpoint.output_path).parent / "final" / session_id)
    return dataclasses.replace(
        cfg,
        train=dataclasses.replace(t, **changes),
        run=dataclasses.replace(r, session_id=session_id, final_path=final_path),
        distributed=dataclasses.replace(d, diloco=diloco),
    )


def _section(section: str, cls, table: dict):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    types = typing.get_type_hints(cls)
    for key in table:
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{section}.{key}: unknown key (known: {known})")
    values = {}
    for name, f in fields.items():
        key = f"{section}.{name}"
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: required key is missing")
            continue
        if dataclasses.is_dataclass(types[name]):  # nested table, e.g. [distributed.diloco]
            if not isinstance(table[name], dict):
                raise ConfigError(f"{key}: must be a table ([{key}]), got {_show(table[name])}")
            values[name] = _section(key, types[name], table[name])
            continue
        values[name] = _check(key, table[name], types[name], f.metadata)
    return cls(**values)


def _check(key: str, value, typ: type, rules):
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if (typ in (int, float) and isinstance(value, bool)) or not isinstance(value, typ):
        raise ConfigError(f"{key}: must be {_TYPE_NAMES[typ]}, got {_show(value)}")
    if value in rules["unsupported"]:
        raise ConfigError(f"{key}: {rules['unsupported'][value]}")
    if rules["choices"] and value not in rules["choices"]:
        raise ConfigError(f"{key}: must be one of {', '.join(rules['choices'])}, got {_show(value)}")
    if rules["auto"] is not None and value == rules["auto"]:
        return value
    if rules["nonempty"] and not value.strip():
        raise ConfigError(f"{key}: must not be empty")
    auto = "" if rules["auto"] is None else f" (or {rules['auto']} = auto)"
    for rule, word in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if rules[rule] is not None and not _BOUNDS[rule](value, rules[rule]):
            raise ConfigError(f"{key}: must be {word} {rules[rule]}{auto}, got {value}")
    return value


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}
_BOUNDS = {
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def field_rules() -> dict:
    """Every key's type, default and rules, by dotted key in file order: the export other
    languages read (docs/schema/config-fields.json). `default` is null for a required key and for
    one derived from other keys (then `auto` is true, or the value that asks for it)."""
    rules = {}

    def walk(prefix: str, cls) -> None:
        types = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = f"{prefix}.{f.name}"
            if dataclasses.is_dataclass(types[f.name]):
                walk(key, types[f.name])
                continue
            meta = f.metadata
            required = f.default is dataclasses.MISSING
            derived = not required and (
                f.default == meta["auto"]
                or any(meta[b] is not None and not ok(f.default, meta[b]) for b, ok in _BOUNDS.items())
            )
            entry = {"type": types[f.name].__name__, "required": required}
            entry["default"] = None if required or derived else f.default
            if derived:
                entry["auto"] = True if meta["auto"] is None else meta["auto"]
            entry.update({b: meta[b] for b in _BOUNDS if meta[b] is not None})
            if meta["choices"]:
                entry["choices"] = list(meta["choices"])
            if meta["nonempty"]:
                entry["nonempty"] = True
            rules[key] = entry

    for name, cls in typing.get_type_hints(Config).items():
        walk(name, cls)
    return rules


def _show(value) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "table", list: "array"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}"


def _toml_value(value) -> str:
    if isinstance(value, str):  # a TOML basic string: JSON's escapes, plus DEL, which TOML wants escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    return json.dumps(value)  # bool, int, float (repr: shortest round trip; never inf/nan in bounds)


def to_toml(cfg: Config) -> str:
    """The resolved config as TOML: every key with the value the trainer uses (defaults that depend
    on other keys filled in, train.warmup = -1 kept as "auto"). load_config() of it gives cfg back.
    [distributed.diloco] is written only under strategy diloco, where it is allowed."""
    lines = []

    def table(name: str, obj) -> None:
        lines.append(f"[{name}]")
        nested = []
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                nested.append((f"{name}.{f.name}", value))
            else:
                lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("")
        for sub, value in nested:
            if sub != "distributed.diloco" or cfg.distributed.strategy == "diloco":
                table(sub, value)

    for f in dataclasses.fields(cfg):
        table(f.name, getattr(cfg, f.name))
    return "\n".join(lines)


def field_rules_json() -> str:
    """field_rules() as JSON, one key per line (docs/schema/config-fields.json)."""
    lines = [f"  {json.dumps(key)}: {json.dumps(entry)}" for key, entry in field_rules().items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    print(field_rules_json(), end="")
