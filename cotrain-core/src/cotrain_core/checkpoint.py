"""Atomic, verifiable training checkpoints.

    from cotrain_core import checkpoint
    path, nbytes = checkpoint.save(out_dir, step, model, state)   # -> <out_dir>/step-<step>/
    latest = checkpoint.find_latest(out_dir, log)                 # newest dir whose hashes match

Layout of <output_path>/step-<n>/:
    model.safetensors   model weights
    state.pt            optimizer state, step, epoch, last loss, RNG states (torch.load weights_only)
    manifest.json       {"format": 1, "step": n, "files": {name: {"sha256", "bytes"}}}, written last
A checkpoint is written to step-<n>.tmp-<pid> and renamed into place, so a crash never leaves a
half-written step-<n>. Only the newest KEEP checkpoints are kept.
"""

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

KEEP = 3
FORMAT = 1
_STEP_DIR = re.compile(r"^step-(\d+)$")


class CheckpointError(Exception):
    """A checkpoint directory is missing, incomplete or fails its hashes."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save(output_path: str | Path, step: int, model, state: dict) -> tuple[Path, int]:
    """Write step-<step>/ atomically, prune old ones; returns (absolute dir, total bytes)."""
    root = Path(output_path).resolve()
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f"step-{step}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()

    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(weights, tmp / "model.safetensors", metadata={"format": "pt"})
    torch.save(state, tmp / "state.pt")
    files = {}
    for name in ("model.safetensors", "state.pt"):
        files[name] = {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
    manifest = {"format": FORMAT, "step": step, "files": files}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    _fsync_dir(tmp)

    if final.exists():  # e.g. a corrupt checkpoint of the same step that we resumed past
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    prune(root)
    nbytes = sum(f.stat().st_size for f in final.iterdir())
    return final, nbytes


def _fsync_dir(path: Path) -> None:
    for f in path.iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def step_dirs(output_path: str | Path) -> list[tuple[int, Path]]:
    """(step, dir) for every step-<n> directory, newest first."""
    root = Path(output_path)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return sorted(found, reverse=True)


def prune(output_path: str | Path, keep: int = KEEP) -> None:
    for _, path in step_dirs(output_path)[keep:]:
        shutil.rmtree(path, ignore_errors=True)
    for stale in Path(output_path).glob("step-*.tmp-*"):  # left behind by killed runs
        if not stale.name.endswith(f".tmp-{os.getpid()}"):
            shutil.rmtree(stale, ignore_errors=True)


def verify(path: str | Path) -> dict:
    """Return the manifest if every listed file exists and matches its sha256, else raise."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: no readable manifest.json ({e})") from None
    for name in ("model.safetensors", "state.pt"):
        if name not in files:
            raise CheckpointError(f"{path}: manifest does not list {name}")
    for name, info in files.items():
        if not (path / name).is_file():
            raise CheckpointError(f"{path}: {name} is missing")
        if _sha256(path / name) != info.get("sha256"):
            raise CheckpointError(f"{path}: sha256 mismatch for {name}")
    return manifest


def find_latest(output_path: str | Path, log) -> Path | None:
    """Newest valid checkpoint; corrupt ones are reported through log(message, level) and skipped."""
    for _, path in step_dirs(output_path):
        try:
            verify(path)
            return path.resolve()
        except CheckpointError as e:
            log(f"skipping corrupt checkpoint: {e}", "warning")
    return None


def load(path: str | Path, model, optimizer) -> dict:
    """Verify, then restore model weights and optimizer state in place; returns the state dict."""
    path = Path(path)
    verify(path)
    model.load_state_dict(load_file(path / "model.safetensors"), strict=True)
    state = torch.load(path / "state.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    return state
