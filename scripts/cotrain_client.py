"""Submit a training session to the Cotrain API and follow it live over the WebSocket.

    python scripts/cotrain_client.py --api http://127.0.0.1:8080 --token-file var/cotrain/admin-token \
        examples/tiny-llama.json

The API token comes from COTRAIN_TOKEN, else from --token-file (./cotrain passes the admin token the
API's first start wrote under the storage root).

Exit code 0 only when the session COMPLETED; 1 when it FAILED or was CANCELLED; 2 when the request
was refused.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

BAR_WIDTH = 30
FINAL = ("COMPLETED", "FAILED", "CANCELLED")


def submit(api: str, token: str, body: bytes) -> dict:
    request = urllib.request.Request(
        f"{api}/api/sessions",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Bearer {token}",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")
        try:
            error = json.loads(detail)
            fields = "; ".join(f"{f['field']}: {f['message']}" for f in error.get("fields", []))
            detail = error.get("detail", detail) + (f" ({fields})" if fields else "")
        except (ValueError, KeyError, TypeError):
            pass
        print(f"the API refused the session ({e.code}): {detail}", file=sys.stderr)
        sys.exit(2)


def draw(message: dict) -> None:
    percent = float(message.get("progress") or 0.0)
    filled = int(BAR_WIDTH * min(percent, 100.0) / 100.0)
    metrics = message.get("metrics") or {}
    accuracy = metrics.get("accuracy")
    line = (
        f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:5.1f}% "
        f"step {message.get('step')}/{message.get('totalSteps')} "
        f"loss {message.get('loss'):.4f}" + (f" acc {accuracy:.3f}" if accuracy is not None else "")
    )
    sys.stdout.write(line)
    sys.stdout.flush()


def follow(ws_url: str, token: str) -> dict:
    """Returns the final session.status message; reconnects if the connection drops."""
    shown = None
    while True:
        try:
            with connect(
                ws_url,
                open_timeout=30,
                additional_headers={"Authorization": f"Bearer {token}"},
            ) as ws:
                for raw in ws:
                    message = json.loads(raw)
                    if message.get("type") == "training.progress":
                        draw(message)
                    elif message.get("type") == "session.status":
                        status = message.get("status")
                        if status in FINAL:
                            return message
                        if status != shown:
                            detail = message.get("message")
                            print(f"\n{status}" + (f": {detail}" if detail else ""))
                            shown = status
        except (ConnectionClosed, OSError) as e:
            print(f"\nconnection lost ({e}); reconnecting", file=sys.stderr)
            time.sleep(2)


def read_token(token_file: str | None) -> str:
    token = os.environ.get("COTRAIN_TOKEN")
    if token:
        return token.strip()
    if token_file:
        try:
            with open(token_file) as f:
                return f.read().strip()
        except OSError as e:
            print(f"cannot read the API token: {e}", file=sys.stderr)
            sys.exit(2)
    print("an API token is needed: set COTRAIN_TOKEN or pass --token-file", file=sys.stderr)
    sys.exit(2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("request", help="TrainingSessionConfig JSON file")
    parser.add_argument("--api", default="http://127.0.0.1:8080")
    parser.add_argument("--ui", default="http://localhost:8233", help="Temporal Web UI")
    parser.add_argument("--token-file", help="a file holding the API token")
    args = parser.parse_args()
    token = read_token(args.token_file)

    with open(args.request, "rb") as f:
        session = submit(args.api, token, f.read())
    print(f"session {session['id']} ({session['status']})")
    print(f"  workflow  {session['workflowId']}")
    print(f"  Temporal  {args.ui}/namespaces/default/workflows/{session['workflowId']}")

    ws_url = args.api.replace("http", "ws", 1) + f"/ws/sessions/{session['id']}"
    final = follow(ws_url, token)
    print()
    if final["status"] == "COMPLETED":
        print(f"COMPLETED: final model in {final.get('finalModelPath')}")
        return 0
    if final["status"] == "CANCELLED":
        print("CANCELLED", file=sys.stderr)
        return 1
    print(f"FAILED: {final.get('error')}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
