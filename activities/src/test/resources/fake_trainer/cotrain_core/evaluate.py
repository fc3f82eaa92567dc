"""A stand-in for the trainer's evaluation in the worker's unit tests.

What it does is chosen by the model directory's name: "ok" (one eval event, the card argument and
CUDA_VISIBLE_DEVICES written beside it), "refused" (exit 3 with an error event), "hang" (waits to
be killed).
"""

import json
import os
import pathlib
import sys
import time

args = sys.argv[1:]
model = pathlib.Path(args[args.index("--model") + 1])
mode = model.name
(model / "evaluated.json").write_text(
    json.dumps(
        {
            "data": args[args.index("--data") + 1],
            "card": args[args.index("--card") + 1],
            "devices": os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)"),
        }
    )
)
if mode == "ok":
    print(json.dumps({"v": 1, "event": "eval", "step": 5, "loss": 2.5, "perplexity": 12.18, "accuracy": 0.4}))
elif mode == "refused":
    print(json.dumps({"v": 1, "event": "error", "kind": "data", "message": "--data: too little data"}))
    sys.exit(3)
elif mode == "hang":
    while True:
        time.sleep(0.1)
