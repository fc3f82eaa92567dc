"""JSON-lines event emitter: one JSON object per stdout line, flushed immediately.

    from cotrain_core.events import Emitter
    out = Emitter.take_stdout()          # events own the real stdout; print() now goes to stderr
    out.emit("log", level="info", message="hello")   # -> {"v": 1, "event": "log", ...}

The protocol is described in docs/protocol.md and docs/schema/events.schema.json.
"""

import json
import os
import sys
import threading

PROTOCOL_VERSION = 1


class Emitter:
    def __init__(self, stream, only: tuple[str, ...] | None = None):
        self._stream = stream
        self._lock = threading.Lock()
        self._only = only  # ranks other than 0 emit only `error` events (read by the launcher)

    @classmethod
    def take_stdout(cls, only: tuple[str, ...] | None = None) -> "Emitter":
        """Keep the real stdout for events and send everything else printed to stderr."""
        emitter = cls(sys.stdout, only)
        sys.stdout = sys.stderr
        return emitter

    def emit(self, event: str, **fields) -> None:
        if self._only is not None and event not in self._only:
            return
        line = json.dumps({"v": PROTOCOL_VERSION, "event": event, **fields}, allow_nan=False)
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except BrokenPipeError:  # nobody reads our events any more: stop like an orphan
                sys.stderr.write("cotrain-core: stdout closed by the reader; stopping\n")
                os._exit(1)

    def log(self, message: str, level: str = "info") -> None:
        print(f"[{level}] {message}", file=sys.stderr, flush=True)
        self.emit("log", level=level, message=message)

    def error(self, kind: str, message: str, retryable: bool) -> None:
        print(f"error ({kind}): {message}", file=sys.stderr, flush=True)
        self.emit("error", kind=kind, message=message, retryable=retryable)
