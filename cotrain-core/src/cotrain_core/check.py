"""Judge configs by the trainer's own rules (config.py) without training: no torch, no data.

    python -m cotrain_core.check run.toml     # exit 0, or 2 with the trainer's message on stderr
    python -m cotrain_core.check              # serve: one request per stdin line, one answer per line

A request line is {"toml": "<config text>"}; its answer is {"ok": true}, or
{"ok": false, "key": "checkpoint.interval", "message": "checkpoint.interval: must be a multiple ..."}
with the message the trainer would stop with (exit 2) and the dotted key it starts with. A worker
keeps one server running, so that checking a session at create time costs no Python start.
Machine checks (fp16 without CUDA, memory) and the data are not judged: they depend on the host
the session is placed on.
"""

import json
import sys
import tomllib

from .config import ConfigError, config_from_dict, load_config


def judge(toml_text: str) -> dict:
    """The answer for one config text."""
    try:
        config_from_dict(tomllib.loads(toml_text))
    except tomllib.TOMLDecodeError as e:
        return {"ok": False, "key": "--config", "message": f"--config: invalid TOML: {e}"}
    except ConfigError as e:
        message = str(e)
        return {"ok": False, "key": message.split(": ", 1)[0], "message": message}
    return {"ok": True}


def serve(lines, out) -> None:
    """Answers each request line of `lines` on `out`, flushing after each, until `lines` ends."""
    for line in lines:
        if not line.strip():
            continue
        try:
            answer = judge(json.loads(line)["toml"])
        except (ValueError, KeyError, TypeError) as e:
            answer = {"ok": False, "key": "request", "message": f"request: not a check request: {e}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        serve(sys.stdin, sys.stdout)
        return 0
    try:
        load_config(argv[0])
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
