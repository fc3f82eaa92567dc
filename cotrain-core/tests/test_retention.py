"""Checkpoint retention by quality: the newest keep_last plus the best by eval loss, deletions announced."""

import json
import random

from conftest import base_config, of, run_trainer, write_config

from cotrain_core import checkpoint
from cotrain_core.corpus import builtin_corpus


def _fake_checkpoints(root, losses: dict):
    for step, loss in losses.items():
        d = root / f"step-{step}"
        d.mkdir(parents=True)
        if loss != "no manifest":
            (d / "manifest.json").write_text(json.dumps({"format": 1, "step": step, "eval_loss": loss}))


def _kept(root):
    return sorted(s for s, _ in checkpoint.step_dirs(root))


def test_prune_keeps_the_newest_and_the_best(tmp_path):
    losses = {1: 3.0, 2: 1.5, 3: 2.0, 4: 1.5, 5: None, 6: "no manifest", 7: 2.5, 8: 2.4}
    _fake_checkpoints(tmp_path / "a", losses)
    deleted = checkpoint.prune(tmp_path / "a", keep=2)
    assert _kept(tmp_path / "a") == [4, 7, 8]  # 4: the lowest loss (tied with 2: the newer one)
    assert sorted(s for s, _ in deleted) == [1, 2, 3, 5, 6]
    assert all(p.is_absolute() and not p.exists() for _, p in deleted)

    _fake_checkpoints(tmp_path / "b", losses)
    checkpoint.prune(tmp_path / "b", keep=2, keep_best=False)
    assert _kept(tmp_path / "b") == [7, 8]
    _fake_checkpoints(tmp_path / "c", {1: None, 2: None, 3: None})  # nothing evaluated: by count only
    assert [s for s, _ in checkpoint.prune(tmp_path / "c", keep=2)] == [1]
    _fake_checkpoints(tmp_path / "d", {1: 0.5, 2: 1.0})
    assert checkpoint.prune(tmp_path / "d", keep=1) == [] and _kept(tmp_path / "d") == [1, 2]


def test_a_run_keeps_the_newest_checkpoints_plus_the_best_and_announces_deletions(tmp_path, validator):
    # The held-out tail is unlike the training text (rare letters), so the validation loss is lowest
    # early and rises as the model learns the training text: the best checkpoint is an old one.
    rng = random.Random(5)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(builtin_corpus(20_000, seed=3) + "".join(rng.choice("qxzjkvwy") for _ in range(1100)))
    cfg = base_config(
        tmp_path,
        train={"max_steps": 40},
        data={"seq_length": 32, "data_path": str(corpus)},
        checkpoint={"interval": 4, "keep_last": 2},
    )
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg))
    assert rc == 0, stderr
    for event in events:
        validator.validate(event)
    ckpts = of(events, "checkpoint")
    assert [c["step"] for c in ckpts] == list(range(4, 41, 4))
    evals = {e["step"]: e["loss"] for e in of(events, "eval")}
    assert all(c["eval_loss"] == evals[c["step"]] for c in ckpts)  # evaluated before it was written
    best = min(ckpts, key=lambda c: (c["eval_loss"], -c["step"]))["step"]
    assert best < 36, "the data should make an early checkpoint the best"
    root = tmp_path / "ckpt"
    assert _kept(root) == sorted({36, 40, best})
    deleted = of(events, "checkpoint_deleted")
    assert sorted(d["step"] for d in deleted) == sorted({c["step"] for c in ckpts} - {36, 40, best})
    path_of = {c["step"]: c["path"] for c in ckpts}
    for d in deleted:
        assert d["path"] == path_of[d["step"]]
        assert events.index(d) > events.index(next(c for c in ckpts if c["step"] == d["step"]))
    assert checkpoint.eval_loss_of(root / f"step-{best}") == evals[best]

    # resume takes the newest checkpoint, not the best; the best is still kept afterwards
    cfg["train"]["max_steps"] = 48
    rc, resumed, stderr = run_trainer(write_config(tmp_path, cfg))
    assert rc == 0, stderr
    assert of(resumed, "start")[0]["resumed_from"] == 40
    later = {c["step"]: c["eval_loss"] for c in of(resumed, "checkpoint")}
    assert list(later) == [44, 48]
    new_best = best if all(v > evals[best] for v in later.values()) else min(later, key=later.get)
    assert _kept(root) == sorted({44, 48, new_best})
    assert sorted(d["step"] for d in of(resumed, "checkpoint_deleted")) == sorted({36, 40, best} - {new_best})
