#!/usr/bin/env bash
# Placement benchmark: how fast the allocator decides with 1,000 queued sessions on 100 hosts
# (activities/src/test/java/dev/cotrain/activities/placement/PlacementBench.java says what it does).
#
#   bench/placement.sh        # after ./cotrain setup; writes bench/results/placement.json
#
# It starts a throw-away PostgreSQL (scripts/postgres.sh) on port 55433 and removes it afterwards.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$(mktemp -d)"
chmod 755 "$DIR" # under root the cluster runs as the postgres user, which must reach it
PORT="${COTRAIN_BENCH_PG_PORT:-55433}"
trap '"$ROOT/scripts/postgres.sh" stop "$DIR/pg" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
"$ROOT/scripts/postgres.sh" start "$DIR/pg" "$PORT" >/dev/null
cd "$ROOT"
COTRAIN_TEST_JDBC_URL="jdbc:postgresql://127.0.0.1:$PORT/cotrain" \
  mvn -B -q -pl activities -am test -Dspotless.check.skip=true -Dtest=PlacementBench \
  -Dsurefire.failIfNoSpecifiedTests=false -Dcotrain.bench.out="$ROOT/bench/results/placement.json"
