"""Config validation: bad configs exit 2 with an error event naming the dotted key."""

import pytest
from conftest import base_config, of, run_trainer, to_toml, write_config

from cotrain_core.config import ConfigError, config_from_dict, load_config


def _without(cfg, section, key):
    del cfg[section][key]
    return cfg


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
        "bert",
        lambda c: c["model"].update(type="bert") or c,
        "model.type: bert is not supported yet (supported: llama2, llama3)",
    ),
    (
        "multi-process",
        lambda c: c["distributed"].update(nodes=2) or c,
        "distributed.nodes: multi-process training is not built yet",
    ),
    (
        "missing session_id",
        lambda c: _without(c, "run", "session_id"),
        "run.session_id: required key is missing",
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


@pytest.mark.parametrize("name,mutate,message", BAD + MACHINE_BAD, ids=[b[0] for b in BAD + MACHINE_BAD])
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
    from conftest import REPO

    cfg = load_config(REPO / "examples" / "tiny-llama.toml")
    assert cfg.run.session_id == "example" and cfg.model.size == "debug"
