"""The short chaos run inside ./cotrain test: three sessions, five faults (bench/chaos.py, whose
full run is ten sessions and twenty faults), on the launcher tests' stack. A failure prints the
seed; `bench/chaos.py --seed N` replays the same choices of fault and delay."""

import sys
import time

from conftest import ROOT, wait_until

sys.path.insert(0, str(ROOT / "bench"))
import chaos  # noqa: E402


def test_a_short_chaos_run_loses_nothing(stack, monkeypatch):
    monkeypatch.setenv("COTRAIN_TOKEN", (stack.storage / "admin-token").read_text().strip())
    seed = int(time.time())
    api = f"http://127.0.0.1:{stack.env['COTRAIN_API_PORT']}"
    result = chaos.run(chaos.Stack(api, stack.storage, stack.env), 3, 5, 200, seed, deadline_s=900)
    chaos.print_summary(result)
    assert result["ok"], result
    # The next tests start from a healthy stack.
    wait_until("the stack is healthy", 120, chaos.Stack(api, stack.storage, stack.env).healthy, every=1)
