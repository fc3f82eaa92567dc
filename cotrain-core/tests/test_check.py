"""The create-time check: the trainer's config rules without training."""

import io
import json
import subprocess
import sys

from conftest import base_config, to_toml, write_config

from cotrain_core.check import judge, serve


def test_a_valid_config_is_accepted(tmp_path):
    assert judge(to_toml(base_config(tmp_path))) == {"ok": True}


def test_a_refused_combination_answers_the_trainers_message_and_key(tmp_path):
    cfg = base_config(tmp_path, distributed={"strategy": "diloco"}, train={"max_steps": 100})
    cfg["distributed.diloco"] = {"inner_steps": 50}  # to_toml writes it as the table [distributed.diloco]
    cfg["checkpoint"]["interval"] = 30
    answer = judge(to_toml(cfg))
    assert answer["ok"] is False
    assert answer["key"] == "checkpoint.interval"
    assert answer["message"].startswith(
        "checkpoint.interval: must be a multiple of distributed.diloco.inner_steps (50)"
    )


def test_the_server_answers_each_line_in_order(tmp_path):
    good = to_toml(base_config(tmp_path))
    bad = to_toml(base_config(tmp_path, distributed={"nodes": 3}))
    requests = [json.dumps({"toml": good}), "", json.dumps({"toml": bad}), "not json", "[run\n"]
    out = io.StringIO()
    serve(io.StringIO("\n".join(requests) + "\n"), out)
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [a["ok"] for a in answers] == [True, False, False, False]
    assert answers[1]["key"] == "train.batch_size"
    assert answers[1]["message"].startswith("train.batch_size: 8 is the global batch")
    assert answers[2]["key"] == answers[3]["key"] == "request"


def test_invalid_toml_is_refused_naming_the_config():
    answer = judge("[run\nsession_id = 1")
    assert answer["ok"] is False and answer["key"] == "--config"


def test_the_command_line_exits_2_with_the_message(tmp_path):
    good = write_config(tmp_path, base_config(tmp_path), "good.toml")
    bad = write_config(tmp_path, base_config(tmp_path, model={"type": "bert", "size": "7B"}), "bad.toml")
    run = [sys.executable, "-m", "cotrain_core.check"]
    assert subprocess.run([*run, str(good)], capture_output=True).returncode == 0
    refused = subprocess.run([*run, str(bad)], capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.startswith("model.size: bert has no 7B preset")
    served = subprocess.run(
        run, input=json.dumps({"toml": bad.read_text()}) + "\n", capture_output=True, text=True
    )
    assert json.loads(served.stdout)["key"] == "model.size"
