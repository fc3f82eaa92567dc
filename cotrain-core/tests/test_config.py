"""Config validation: bad configs exit 2 with an error event naming the dotted key."""

import pytest
from conftest import REPO, base_config, of, run_trainer, to_toml, write_config

from cotrain_core.config import (
    ConfigError,
    config_from_dict,
    field_rules,
    field_rules_json,
    load_config,
    read_config,
)


def _without(cfg, section, key):
    del cfg[section][key]
    return cfg


def _diloco(cfg, **diloco):
    """Switch to diloco with a [distributed.diloco] table; returns None so lambdas can chain with `or`."""
    cfg["distributed"].update(strategy="diloco", diloco=diloco)
    cfg["checkpoint"]["interval"] = 0
    cfg["train"]["max_steps"] = 0


BAD = [
    # (name, mutate(cfg) -> cfg, expected message prefix)
    ("unknown key", lambda c: c["train"].update(batchsize=8) or c, "train.batchsize: unknown key"),
    ("unknown section", lambda c: c.update(optim={"x": 1}) or c, "optim: unknown section"),
    ("wrong type", lambda c: c["train"].update(batch_size="8") or c, "train.batch_size: must be an integer"),
    ("float for int", lambda c: c["train"].update(epochs=1.5) or c, "train.epochs: must be an integer"),
    ("bool for int", lambda c: c["data"].update(seq_length=True) or c, "data.seq_length: must be an integer"),
    (
        "negative lr",
        lambda c: c["train"].update(learning_rate=-1) or c,
        "train.learning_rate: must be > 0, got -1",
    ),
    ("seq too long", lambda c: c["data"].update(seq_length=8192) or c, "data.seq_length: must be <= 4096"),
    ("bad enum", lambda c: c["train"].update(optimizer="lion") or c, "train.optimizer: must be one of"),
    (
        "bad strategy",
        lambda c: c["distributed"].update(strategy="zero") or c,
        "distributed.strategy: must be one of",
    ),
    (
        "micro batch not dividing",
        lambda c: c["train"].update(batch_size=8, micro_batch_size=3) or c,
        "train.micro_batch_size: 3 must divide the per-rank batch 8",
    ),
    (
        "batch not divisible by world",
        lambda c: c["distributed"].update(nodes=3) or c,
        "train.batch_size: 8 is the global batch and must be divisible by the world size 3",
    ),
    ("bert 70B", lambda c: c["model"].update(type="bert", size="70B") or c, "model.size: bert has no 70B"),
    ("bert 7B", lambda c: c["model"].update(type="bert", size="7B") or c, "model.size: bert has no 7B"),
    (
        "diloco interval",
        lambda c: _diloco(c, inner_steps=30) or c["checkpoint"].update(interval=20) or c,
        "checkpoint.interval: must be a multiple of distributed.diloco.inner_steps (30)",
    ),
    (
        "diloco island not dividing",
        lambda c: _diloco(c, island_size=3) or c["distributed"].update(gpus_per_node=2) or c,
        "distributed.diloco.island_size: 3 must divide the world size 2",
    ),
    (
        "diloco max_steps",
        lambda c: _diloco(c, inner_steps=20) or c["train"].update(max_steps=130) or c,
        "train.max_steps: must be a multiple of distributed.diloco.inner_steps (20)",
    ),
    (
        "diloco table under ddp",
        lambda c: c["distributed"].update(diloco={"inner_steps": 10}) or c,
        'distributed.diloco: only allowed with distributed.strategy = "diloco"',
    ),
    (
        "unknown diloco key",
        lambda c: _diloco(c, inner_step=10) or c,
        "distributed.diloco.inner_step: unknown key",
    ),
    (
        "pseudo_grad_dtype int4",
        lambda c: _diloco(c, pseudo_grad_dtype="int4") or c,
        "distributed.diloco.pseudo_grad_dtype: must be one of fp32, bf16, fp16",
    ),
    (
        "nesterov not bool",
        lambda c: _diloco(c, nesterov=1) or c,
        "distributed.diloco.nesterov: must be a boolean",
    ),
    (
        "diloco not a table",
        lambda c: c["distributed"].update(diloco=5) or c,
        "distributed.diloco: must be a table",
    ),
    ("bad schedule", lambda c: c["train"].update(schedule="step") or c, "train.schedule: must be one of"),
    (
        "negative weight_decay",
        lambda c: c["train"].update(weight_decay=-0.1) or c,
        "train.weight_decay: must be >= 0",
    ),
    ("negative grad_clip", lambda c: c["train"].update(grad_clip=-1) or c, "train.grad_clip: must be >= 0"),
    (
        "warmup below -1",
        lambda c: c["train"].update(warmup=-2) or c,
        "train.warmup: must be >= 0 (or -1 = auto), got -2",
    ),
    (
        "batch over the limit",
        lambda c: c["train"].update(batch_size=8192) or c,
        "train.batch_size: must be <= 4096, got 8192",
    ),
    ("seed over int32", lambda c: c["train"].update(seed=2**31) or c, "train.seed: must be <= 2147483647"),
    (
        "validation_split 0.9",
        lambda c: c["data"].update(validation_split=0.9) or c,
        "data.validation_split: must be <= 0.5, got 0.9",
    ),
    (
        "validation_split 0",
        lambda c: c["data"].update(validation_split=0) or c,
        "data.validation_split: must be > 0",
    ),
    (
        "mlm_probability 1",
        lambda c: c["data"].update(mlm_probability=1) or c,
        "data.mlm_probability: must be < 1",
    ),
    (
        "tokenizer sentencepiece",
        lambda c: c["data"].update(tokenizer="sentencepiece") or c,
        "data.tokenizer: must be one of byte, bpe",
    ),
    (
        "bpe vocab too small",
        lambda c: c["data"].update(vocab_size=100) or c,
        "data.vocab_size: must be >= 261",
    ),
    ("keep_last 0", lambda c: c["checkpoint"].update(keep_last=0) or c, "checkpoint.keep_last: must be >= 1"),
    (
        "storage_root number",
        lambda c: c["run"].update(storage_root=1) or c,
        "run.storage_root: must be a string",
    ),
    (
        "missing output_path",
        lambda c: _without(c, "checkpoint", "output_path"),
        "checkpoint.output_path: required key is missing",
    ),
    (
        "blank session_id",
        lambda c: c["run"].update(session_id="  ") or c,
        "run.session_id: must not be empty",
    ),
    (
        "empty output_path",
        lambda c: c["checkpoint"].update(output_path=" ") or c,
        "checkpoint.output_path: must not be empty",
    ),
]

# need torch / the machine, so only checked end to end
MACHINE_BAD = [
    (
        "fp16 on CPU",
        lambda c: c["model"].update(precision="fp16") or c,
        "model.precision: fp16 needs a CUDA GPU",
    ),
    ("too big for RAM", lambda c: c["model"].update(size="70B") or c, "model.size: 70B needs about"),
]


@pytest.mark.parametrize("name,mutate,message", BAD, ids=[b[0] for b in BAD])
def test_bad_config_in_process(tmp_path, name, mutate, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(mutate(base_config(tmp_path)))
    assert str(err.value).startswith(message)


# end to end (subprocess): one in-process case plus those that need the machine
SUBPROCESS_BAD = [BAD[0], *MACHINE_BAD]


@pytest.mark.parametrize("name,mutate,message", SUBPROCESS_BAD, ids=[b[0] for b in SUBPROCESS_BAD])
def test_bad_config_exits_2(tmp_path, name, mutate, message):
    rc, events, stderr = run_trainer(write_config(tmp_path, mutate(base_config(tmp_path))))
    assert rc == 2, stderr
    (error,) = of(events, "error")
    assert error["kind"] == "config" and error["retryable"] is False
    assert error["message"].startswith(message)
    assert message in stderr
    assert not of(events, "start")


def test_invalid_toml_and_missing_file_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nsession_id = 1")
    rc, events, _ = run_trainer(bad)
    assert rc == 2 and of(events, "error")[0]["message"].startswith("--config: invalid TOML")
    rc, events, _ = run_trainer(tmp_path / "nope.toml")
    assert rc == 2 and of(events, "error")[0]["message"].startswith("--config: cannot read")


def test_good_config_defaults_and_free_text_name(tmp_path):
    cfg = base_config(tmp_path)
    del cfg["train"]["max_steps"], cfg["train"]["seed"]
    loaded = load_config(write_config(tmp_path, cfg))
    assert loaded.run.name == 'a "test" run\nwith [brackets]'
    assert loaded.train.max_steps == 0 and loaded.train.seed == 1234
    assert isinstance(
        config_from_dict({**cfg, "train": {**cfg["train"], "learning_rate": 1}}).train.learning_rate, float
    )
    assert "[run]" in to_toml(cfg)


def test_example_config_is_valid():
    cfg = load_config(REPO / "examples" / "tiny-llama.toml")
    assert cfg.run.session_id == "example" and cfg.model.size == "debug"


def test_new_defaults_are_resolved(tmp_path):
    cfg = config_from_dict(base_config(tmp_path))
    t, d = cfg.train, cfg.data
    assert (t.micro_batch_size, t.warmup, t.schedule, t.weight_decay, t.grad_clip) == (
        8,
        -1,
        "cosine",
        0.01,
        1.0,
    )
    assert (d.tokenizer, d.vocab_size, d.validation_split, d.mlm_probability) == ("byte", 1024, 0.05, 0.15)
    assert cfg.checkpoint.keep_last == 3 and cfg.run.storage_root == ""
    assert cfg.distributed.diloco.inner_steps == 50 and cfg.distributed.diloco.nesterov is True
    assert cfg.world_size == 1 and cfg.per_rank_batch == 8 and cfg.grad_accum_steps == 1
    for optimizer, decay in (("adam", 0.0), ("sgd", 0.0), ("adamw", 0.01)):
        assert (
            config_from_dict(base_config(tmp_path, train={"optimizer": optimizer})).train.weight_decay
            == decay
        )
    explicit = config_from_dict(base_config(tmp_path, train={"optimizer": "sgd", "weight_decay": 0.1}))
    assert explicit.train.weight_decay == 0.1


def test_multi_process_diloco_and_bert_configs_are_accepted(tmp_path):
    import tomllib

    from cotrain_core.config import to_toml as resolved_toml

    raw = base_config(
        tmp_path,
        model={"type": "bert", "size": "125M", "precision": "bf16"},
        train={"batch_size": 64, "micro_batch_size": 4, "max_steps": 200},
        distributed={"nodes": 4, "gpus_per_node": 2, "strategy": "diloco"},
        checkpoint={"interval": 100},
    )
    raw["distributed"]["diloco"] = {"inner_steps": 50, "outer_lr": 0.5, "pseudo_grad_dtype": "bf16"}
    cfg = config_from_dict(raw)
    assert cfg.world_size == 8 and cfg.per_rank_batch == 8 and cfg.grad_accum_steps == 2
    assert cfg.distributed.diloco.outer_lr == 0.5 and cfg.distributed.diloco.outer_momentum == 0.5
    assert cfg.distributed.diloco.pseudo_grad_dtype == "bf16"
    # auto: 1/sqrt(replicas); one island of 2 ranks per node: 4 replicas
    assert cfg.distributed.diloco.island_size == 2 and cfg.islands == 4
    assert cfg.distributed.diloco.inner_lr_scale == 1 / 4**0.5
    raw["distributed"]["diloco"]["island_size"] = 1  # every rank its own replica: 8
    assert config_from_dict(raw).distributed.diloco.inner_lr_scale == 1 / 8**0.5
    del raw["distributed"]["diloco"]["island_size"]
    raw["distributed"]["diloco"]["inner_lr_scale"] = 1.0
    assert config_from_dict(raw).distributed.diloco.inner_lr_scale == 1.0
    assert config_from_dict(tomllib.loads(resolved_toml(cfg))) == cfg  # the resolved scale round-trips
    raw["distributed"]["diloco"]["inner_lr_scale"] = 0
    with pytest.raises(ConfigError, match="distributed.diloco.inner_lr_scale"):
        config_from_dict(raw)
    del raw["distributed"]["diloco"]["inner_lr_scale"]
    # interval 0 (no periodic checkpoints) and max_steps 0 are multiples of every inner_steps
    raw["checkpoint"]["interval"], raw["train"]["max_steps"] = 0, 0
    assert config_from_dict(raw).checkpoint.interval == 0


def test_seed_example_llama2_7b_diloco(tmp_path):
    """The seed's example: llama2 / 7B / bf16 / diloco on 4 nodes x 8 GPUs."""
    raw = base_config(
        tmp_path,
        model={"type": "llama2", "size": "7B", "precision": "bf16"},
        train={"batch_size": 256, "max_steps": 1000},
        distributed={"nodes": 4, "gpus_per_node": 8, "strategy": "diloco"},
        checkpoint={"interval": 500},
    )
    cfg = config_from_dict(raw)
    assert cfg.world_size == 32 and cfg.per_rank_batch == 8 and cfg.distributed.diloco.inner_steps == 50


def test_lr_schedules(tmp_path):
    from cotrain_core.objective import lr_at, warmup_steps

    def train(**kw):
        return config_from_dict(base_config(tmp_path, train={"learning_rate": 1.0, **kw})).train

    cosine = train()
    assert (
        warmup_steps(1000, cosine) == 100 and warmup_steps(50, cosine) == 5 and warmup_steps(5, cosine) == 1
    )
    assert lr_at(50, 1000, cosine) == 0.5 and lr_at(100, 1000, cosine) == 1.0
    assert abs(lr_at(1000, 1000, cosine) - 0.1) < 1e-12
    assert abs(lr_at(550, 1000, cosine) - 0.55) < 1e-12  # halfway through the decay: 0.1 + 0.9 / 2
    linear = train(schedule="linear", warmup=0)
    assert lr_at(1, 101, linear) == 1.0 - 0.9 / 101 and abs(lr_at(101, 101, linear) - 0.1) < 1e-12
    constant = train(schedule="constant", warmup=10)
    assert (
        lr_at(5, 100, constant) == 0.5
        and lr_at(10, 100, constant) == 1.0
        and lr_at(100, 100, constant) == 1.0
    )
    assert lr_at(0, 100, train(warmup=0)) == 1.0  # no warmup, no division by zero


def test_the_checked_in_field_rules_are_current():
    # Regenerate with: python -m cotrain_core.config > docs/schema/config-fields.json
    assert (REPO / "docs" / "schema" / "config-fields.json").read_text() == field_rules_json()


def test_field_rules_say_what_the_api_needs():
    rules = field_rules()
    assert rules["train.batch_size"] == {"type": "int", "required": False, "default": 8, "gt": 0, "le": 4096}
    assert rules["train.warmup"]["auto"] == -1 and rules["train.warmup"]["default"] is None
    assert rules["train.micro_batch_size"]["auto"] is True
    assert rules["model.type"]["required"] and rules["model.type"]["choices"] == ["llama2", "llama3", "bert"]
    assert rules["distributed.diloco.outer_momentum"]["lt"] == 1


def test_a_config_without_run_takes_its_file_name_and_says_what_it_defaulted(tmp_path):
    raw = base_config(tmp_path)
    del raw["run"]
    path = tmp_path / "my-run.toml"
    path.write_text(to_toml(raw))
    cfg, defaulted = read_config(path)
    assert cfg.run.session_id == "my-run"
    assert cfg.run.final_path == str(tmp_path / "final" / "my-run")  # beside checkpoint.output_path
    assert defaulted["run.session_id"] == "my-run" and defaulted["run.final_path"] == cfg.run.final_path
    assert "model.type" not in defaulted and defaulted["train.micro_batch_size"] == cfg.train.micro_batch_size
    assert "distributed.diloco.inner_steps" not in defaulted  # only under strategy diloco
    raw["run"] = {"session_id": "", "final_path": str(tmp_path / "elsewhere")}  # "" = derived, as left out
    cfg = config_from_dict(raw, name="named")
    assert (cfg.run.session_id, cfg.run.final_path) == ("named", str(tmp_path / "elsewhere"))


def test_the_dependency_floor_is_what_pyproject_declares():
    """floor.txt pins exactly pyproject's lower bounds (floor.sh installs it and runs these tests)."""
    import tomllib

    project = tomllib.loads((REPO / "cotrain-core" / "pyproject.toml").read_text())["project"]
    lower = dict(d.split(">=") for d in project["dependencies"])
    lines = (REPO / "cotrain-core" / "floor.txt").read_text().splitlines()
    pinned = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert pinned == lower
