"""Cotrain training core: a single-process LLM trainer that speaks JSON-lines events on stdout.

    python -m cotrain_core.train --config run.toml [--resume CHECKPOINT_DIR]

See cotrain-core/README.md, docs/config.md and docs/protocol.md.
"""

__version__ = "0.1.0"
