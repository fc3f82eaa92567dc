#!/usr/bin/env bash
# Every system benchmark, one after the other, each writing bench/results/<name>.json, then the
# table of their figures (bench/table.py, the README's "Performance and reliability").
#
#   bench/run_all.sh            # about 75 minutes on the 2-core development machine
#   bench/run_all.sh --no-cluster   # without the Docker cluster's failover (no Docker engine)
#
# The stack of `./cotrain up --detach` serves the benchmarks (started here if it is not running);
# the relay's load needs 100 training slots, so the worker is started again with them for it; the
# cluster's failover runs `./cotrain cluster up`, then `down`. Nothing else should run meanwhile:
# every figure is a time on a shared machine. The trainer's own benchmarks (throughput, bytes on
# the wire, DiLoCo against DDP) are in cotrain-core/bench (cotrain-core/README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python

./cotrain up --detach
$PY bench/overhead.py --pairs 3
$PY bench/start_latency.py --sessions 50
$PY bench/create.py --trials 100
$PY bench/create_rate.py --count 200 --clients 8
$PY bench/handover.py --trials 5
$PY bench/recovery.py --trials 3
$PY bench/chaos.py --sessions 10 --faults 20
./cotrain down
bench/placement.sh
COTRAIN_TRAINING_SLOTS=100 ./cotrain up --detach
$PY bench/relay.py --sessions 1,10,100 --rate 10 --seconds 90
./cotrain down
if [ "${1:-}" != --no-cluster ]; then
  ./cotrain cluster up
  $PY bench/cluster_failover.py --trials 3
  ./cotrain cluster down
fi
$PY bench/table.py
