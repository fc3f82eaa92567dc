#!/bin/sh
# Entry point of the cotrain-worker image: checks the shared storage tree and the Python
# trainer, then replaces itself with the Java worker (arguments are passed to it).
set -eu

root="${COTRAIN_STORAGE_ROOT:?COTRAIN_STORAGE_ROOT must be set}"
python="${COTRAIN_PYTHON:?COTRAIN_PYTHON must be set}"

# The tree every worker shares (the worker creates it too; doing it here fails early, with a
# clear message, when the volume is not writable by this uid).
for dir in models/checkpoints models/final models/temp \
           datasets/raw datasets/processed datasets/splits \
           configs/generated configs/templates \
           logs/training logs/system; do
  if ! mkdir -p "$root/$dir" 2>/dev/null || [ ! -w "$root/$dir" ]; then
    echo "worker-entrypoint: $root/$dir is not writable by uid $(id -u); the storage volume" \
         "must be writable by uid 10001 (chown it on the NFS server or host)" >&2
    exit 1
  fi
done

if ! "$python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("cotrain_core") is None)'; then
  echo "worker-entrypoint: $python cannot import cotrain_core" >&2
  exit 1
fi

# JAVA_OPTS is split on spaces on purpose.
# shellcheck disable=SC2086
exec java $JAVA_OPTS -jar /opt/cotrain/cotrain-worker.jar "$@"
