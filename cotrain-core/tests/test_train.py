"""End-to-end runs of `python -m cotrain_core.train` as a subprocess."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, base_config, of, run_trainer, step_losses, trainer_cmd, write_config

from cotrain_core import checkpoint, export
from cotrain_core.corpus import builtin_corpus
from cotrain_core.data import split_tokens, windows
from cotrain_core.objective import EVAL_MAX_WINDOWS
from cotrain_core.tokenizer import encode


def _assert_same_losses(events, reference_events, after_step):
    got, want = step_losses(events), step_losses(reference_events)
    steps = sorted(s for s in got if s > after_step)
    assert steps == [s for s in sorted(want) if s > after_step]
    torch.testing.assert_close(
        torch.tensor([got[s] for s in steps]), torch.tensor([want[s] for s in steps]), rtol=1e-4, atol=1e-5
    )


def test_loss_falls_and_final_model_loads(reference_run):
    events = reference_run["events"]
    assert [e["event"] for e in events[:2]] == ["log", "start"]
    start, done = of(events, "start")[0], events[-1]
    assert start["total_steps"] == 120 and start["resumed_from"] is None and start["world_size"] == 1
    losses = [e["loss"] for e in of(events, "step")]
    assert len(losses) == 120
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    assert done["event"] == "done" and done["step"] == 120
    assert of(events, "eval")[-1]["step"] == 120 and done["eval_loss"] == of(events, "eval")[-1]["loss"]

    # the final model loads with plain transformers and reproduces the eval loss
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(done["final_path"]).eval()
    seq = reference_run["cfg"]["data"]["seq_length"]
    val = windows(split_tokens(encode(builtin_corpus()), seq, 8).val, seq)[:EVAL_MAX_WINDOWS]  # [N, L+1]
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(val), 8):
            batch = val[i : i + 8]
            total += model(input_ids=batch, labels=batch).loss.item() * batch[:, 1:].numel()
            count += batch[:, 1:].numel()
    assert math.isclose(total / count, done["eval_loss"], rel_tol=1e-4)
    assert json.loads((Path(done["final_path"]) / "cotrain_tokenizer.json").read_text())["vocab_size"] == 260


def test_done_reports_what_the_registry_records(reference_run):
    """parameters, data fingerprint, held-out split and files; evaluate.py on that split reproduces
    the final eval loss bitwise (fp32 on CPU, one process)."""
    events = reference_run["events"]
    done, start = events[-1], of(events, "start")[0]
    final = Path(done["final_path"])
    assert done["parameters"] == start["parameters"] == 468_608
    assert done["files"] == export.list_files(final) and done["bytes"] == sum(
        f["bytes"] for f in done["files"]
    )
    assert {"model.safetensors", "tokenizer.json", "README.md"} <= {f["name"] for f in done["files"]}
    split = Path(done["validation_path"])
    assert (
        split.is_absolute()
        and split.name == "validation.npy"
        and split.parent.name == done["data_fingerprint"][:24]
    )
    assert done["data_fingerprint"] in (final / "README.md").read_text()

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cotrain_core.evaluate",
            "--model",
            final,
            "--data",
            split,
            "--card",
            "validation",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    event = json.loads(proc.stdout)
    last = of(events, "eval")[-1]
    assert (event["step"], event["loss"], event["accuracy"]) == (last["step"], last["loss"], last["accuracy"])
    assert event["loss"] == done["eval_loss"]


def test_checkpoints_are_atomic_verified_and_pruned(reference_run):
    events = reference_run["events"]
    assert [e["step"] for e in of(events, "checkpoint")] == [20, 40, 60, 80, 100, 120]
    root = reference_run["tmp_path"] / "ckpt"
    best = min(of(events, "checkpoint"), key=lambda c: (c["eval_loss"], -c["step"]))["step"]
    kept = {80, 100, 120, best}  # newest 3 and the best by eval loss
    assert sorted(p.name for p in root.iterdir()) == sorted(f"step-{s}" for s in kept)
    assert {d["step"] for d in of(events, "checkpoint_deleted")} == {20, 40, 60} - kept
    for ev in of(events, "checkpoint")[-3:]:
        assert Path(ev["path"]).is_absolute()
        assert checkpoint.verify(ev["path"])["step"] == ev["step"]
        assert ev["bytes"] == sum(f.stat().st_size for f in Path(ev["path"]).iterdir())


def test_events_validate_against_schema(reference_run, validator, tmp_path):
    for event in reference_run["events"]:
        validator.validate(event)
    rc, events, _ = run_trainer(
        write_config(tmp_path, base_config(tmp_path, model={"type": "bert", "size": "70B"}))
    )
    assert rc == 2
    for event in events:
        validator.validate(event)
    for sample in (
        REPO / "cotrain-core/tests/data/sample-stream.jsonl",
        REPO / "docs/schema/sample-stream.jsonl",
        REPO / "docs/schema/sample-stream-diloco.jsonl",
    ):
        for line in sample.read_text().splitlines():
            validator.validate(json.loads(line))


def test_sigterm_writes_checkpoint_then_resume_matches(reference_run, validator, tmp_path):
    cfg = base_config(tmp_path)
    config = write_config(tmp_path, cfg)
    proc = subprocess.Popen(trainer_cmd(config), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "step" and events[-1]["step"] == 30:
            proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 4
    stopped_at = of(events, "step")[-1]["step"]
    assert 30 <= stopped_at < 120 and not of(events, "done")
    assert of(events, "checkpoint")[-1]["step"] == stopped_at
    assert of(events, "log")[-1]["level"] == "warning"
    for event in events:
        validator.validate(event)

    # no --resume: the newest valid checkpoint in output_path is picked up automatically
    rc, resumed, stderr = run_trainer(config)
    assert rc == 0, stderr
    assert of(resumed, "start")[0]["resumed_from"] == stopped_at
    _assert_same_losses(resumed, reference_run["events"], after_step=stopped_at)


def test_corrupt_newest_checkpoint_falls_back(reference_run, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(reference_run["tmp_path"] / "ckpt", ckpt)
    weights = ckpt / "step-120" / "__0_0.distcp"  # the model and optimizer shards
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    rc, events, stderr = run_trainer(write_config(tmp_path, base_config(tmp_path)))
    assert rc == 0, stderr
    warnings = [e["message"] for e in of(events, "log") if e["level"] == "warning"]
    assert any("step-120" in m and "sha256 mismatch" in m for m in warnings)
    assert of(events, "start")[0]["resumed_from"] == 100
    _assert_same_losses(events, reference_run["events"], after_step=100)
    assert checkpoint.verify(ckpt / "step-120")  # rewritten, valid again


def test_explicit_resume_dir(reference_run, tmp_path):
    src = reference_run["tmp_path"] / "ckpt" / "step-80"
    cfg = base_config(tmp_path)
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg), "--resume", str(src))
    assert rc == 0, stderr
    assert of(events, "start")[0]["resumed_from"] == 80
    _assert_same_losses(events, reference_run["events"], after_step=80)
    rc, events, _ = run_trainer(write_config(tmp_path, cfg), "--resume", str(tmp_path / "missing"))
    assert rc == 2 and of(events, "error")[0]["message"].startswith("--resume:")


@pytest.mark.parametrize("content", [None, ""], ids=["missing file", "empty file"])
def test_bad_data_exits_3(tmp_path, content):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_text(content)
    rc, events, stderr = run_trainer(
        write_config(tmp_path, base_config(tmp_path, data={"data_path": str(path)}))
    )
    assert rc == 3, stderr
    (error,) = of(events, "error")
    assert error["kind"] == "data" and error["message"].startswith("data.data_path:")


def test_text_file_and_bf16(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(builtin_corpus(20_000, seed=7))
    cfg = base_config(
        tmp_path,
        data={"data_path": str(path), "seq_length": 32},
        model={"type": "llama3", "precision": "bf16"},
        train={"max_steps": 6, "optimizer": "sgd", "learning_rate": 0.05},
        checkpoint={"interval": 0},
    )
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg))
    assert rc == 0, stderr
    assert len(of(events, "step")) == 6 and not of(events, "checkpoint")
    assert of(events, "start")[0]["model"] == {"type": "llama3", "size": "debug", "precision": "bf16"}


def test_too_short_text_file_exits_3(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("hello world\n")
    rc, events, _ = run_trainer(write_config(tmp_path, base_config(tmp_path, data={"data_path": str(path)})))
    assert rc == 3 and "too short" in of(events, "error")[0]["message"]


def test_exits_when_parent_dies(tmp_path):
    config = write_config(tmp_path, base_config(tmp_path, train={"max_steps": 100_000, "epochs": 1000}))
    cmd = " ".join(f"'{c}'" for c in trainer_cmd(config))
    # bash starts the trainer in the background, prints its pid, and exits 2 s later
    out = subprocess.run(
        ["bash", "-c", f"{cmd} >/dev/null 2>&1 & echo $!; sleep 2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    alive = _alive(pid)
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "trainer kept running after its parent exited"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_dry_run_plans_a_7b_diloco_run_of_32_ranks(tmp_path, validator):
    """llama2 / 7B / bf16 / diloco on 4 nodes x 8 GPUs: planned on a CPU machine without weights."""
    cfg = base_config(
        tmp_path,
        model={"type": "llama2", "size": "7B", "precision": "bf16"},
        train={"batch_size": 256, "micro_batch_size": 4, "max_steps": 0, "epochs": 100},
        distributed={"nodes": 4, "gpus_per_node": 8, "strategy": "diloco"},
        checkpoint={"interval": 500},
    )
    cfg["distributed.diloco"] = {"inner_steps": 100}
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg), "--dry-run", timeout=60)
    assert rc == 0, stderr
    (plan,) = events
    validator.validate(plan)
    # published Llama 2 7B dims; 6.48B instead of 6.74B because the byte vocabulary has 260, not 32000, ids
    assert plan["model"]["hidden_size"] == 4096 and plan["model"]["layers"] == 32
    assert 6.4e9 < plan["parameters"] < 6.8e9
    assert (plan["world_size"], plan["per_rank_batch"], plan["micro_batches"]) == (32, 8, 2)
    assert plan["inner_steps"] == 100 and plan["outer_steps"] == -(-plan["total_steps"] // 100)
    assert not (tmp_path / "ckpt").exists()


def test_the_seed_example_as_written_is_planned(validator):
    """examples/seed-7b-diloco.toml is the plan's own config, without [run] and with data elsewhere."""
    rc, events, stderr = run_trainer(REPO / "examples" / "seed-7b-diloco.toml", "--dry-run", timeout=60)
    assert rc == 0, stderr
    (plan,) = events
    validator.validate(plan)
    assert plan["defaulted"]["run.session_id"] == "seed-7b-diloco"
    assert plan["defaulted"]["run.final_path"] == "/app/shared/models/final/seed-7b-diloco"
    assert plan["defaulted"]["distributed.diloco.inner_steps"] == plan["inner_steps"]
    assert "model.size" not in plan["defaulted"] and plan["world_size"] == 32
    assert plan["total_steps"] is None and plan["warnings"][0].startswith("data.data_path: ")


def test_bert_trains_and_exports_masked_lm(tmp_path, validator):
    cfg = base_config(
        tmp_path,
        model={"type": "bert"},
        train={"max_steps": 6},
        data={"seq_length": 32},
        checkpoint={"interval": 3},
    )
    rc, events, stderr = run_trainer(write_config(tmp_path, cfg))
    assert rc == 0, stderr
    # tied decoder / word embeddings are stored once; the checkpoint resumes (same losses as uninterrupted)
    rc, resumed, stderr = run_trainer(
        write_config(tmp_path, cfg), "--resume", str(tmp_path / "ckpt" / "step-3")
    )
    assert rc == 0, stderr
    assert step_losses(resumed) == {s: v for s, v in step_losses(events).items() if s > 3}
    for event in events:
        validator.validate(event)
    from transformers import AutoModelForMaskedLM

    from cotrain_core.evaluate import evaluate_model

    done = of(events, "done")[0]
    assert AutoModelForMaskedLM.from_pretrained(done["final_path"]) is not None
    (val,) = Path(tmp_path).glob("**/datasets/splits/*/validation.npy")
    got = evaluate_model(done["final_path"], val)
    assert math.isclose(got["loss"], done["eval_loss"], rel_tol=1e-4)
