"""Atomic, verifiable training checkpoints, written by one or many ranks.

    from cotrain_core import checkpoint
    tmp = checkpoint.begin(out_dir, step, token)               # rank 0, before the others write
    # every rank: torch.distributed.checkpoint into tmp, write_state(), hashes = hash_files(tmp, names)
    path, nbytes, deleted = checkpoint.commit(out_dir, tmp, step, world, keep, eval_loss, keep_best,
                                              hashes)         # rank 0: manifest, rename, prune
    latest = checkpoint.find_latest(out_dir, log)               # newest dir whose hashes match

Layout of <output_path>/step-<n>/ (format 2):
    .metadata, __<r>_<i>.distcp   torch.distributed.checkpoint (DCP) of {"model", "optimizer"}: every
                        rank writes its own shards (fsdp) or its share of the deduplicated replicas;
                        "optimizer" is absent where the inner optimizer differs per rank (DiLoCo)
    state.pt            rank 0: step, data position, last loss, meta, strategy state (DiLoCo: outer
                        optimizer, global weights)
    rank-<r>.pt         per rank: RNG states, grad scaler, inner optimizer where it differs per rank
    manifest.json       {"format": 2, "step": n, "world_size": w, "eval_loss": x | null,
                        "files": {name: {"sha256", "bytes"}}}, written last
Format 1 (model.safetensors with the full weights, the optimizer in state.pt) is still read.
A checkpoint is written to step-<n>.tmp-<token> and renamed into place, so a crash never leaves
a half-written step-<n>. Each rank hashes the files it wrote; verify() hashes in a thread pool.
Pruning keeps the newest keep_last checkpoints and, with keep_best, the one with the lowest
eval_loss in its manifest (ties: the newest); commit() returns what it deleted.
"""

import hashlib
import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from safetensors.torch import load_file

KEEP = 3
FORMAT = 2
_STEP_DIR = re.compile(r"^step-(\d+)$")
REQUIRED = {1: ("model.safetensors", "state.pt"), 2: (".metadata", "state.pt")}
HASH_THREADS = 4


class CheckpointError(Exception):
    """A checkpoint directory is missing, incomplete or fails its hashes."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def begin(output_path: str | Path, step: int, token: int | str) -> Path:
    """Create (empty) the temporary directory every rank writes into. Call on rank 0 before the others."""
    root = Path(output_path).resolve()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"step-{step}.tmp-{token}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def write_state(tmp: Path, rank: int, state: dict | None, rank_state: dict) -> list[str]:
    """rank 0's state.pt and this rank's rank-<r>.pt; returns the names written."""
    names = [f"rank-{rank}.pt"]
    torch.save(rank_state, tmp / names[0])
    if state is not None:
        torch.save(state, tmp / "state.pt")
        names.append("state.pt")
    return names


def hash_files(directory: Path, names) -> dict:
    """{name: {"sha256", "bytes"}} of the named files, hashed in a thread pool (hashlib frees the GIL)."""
    names = sorted(names)
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        digests = list(pool.map(lambda n: _sha256(directory / n), names))
    return {
        n: {"sha256": d, "bytes": (directory / n).stat().st_size} for n, d in zip(names, digests, strict=True)
    }


def commit(
    output_path: str | Path,
    tmp: Path,
    step: int,
    world_size: int = 1,
    keep: int = KEEP,
    eval_loss: float | None = None,
    keep_best: bool = True,
    hashes: dict | None = None,
):
    """Write the manifest (`hashes` from the ranks that wrote the files; the rest are hashed here),
    rename into place, prune. Returns (dir, bytes, [(step, dir) of every checkpoint pruned])."""
    root = Path(output_path).resolve()
    final = root / f"step-{step}"
    hashes = hashes or {}
    names = {f.name for f in tmp.iterdir()}
    files = {**hash_files(tmp, names - hashes.keys()), **{n: hashes[n] for n in names & hashes.keys()}}
    files = dict(sorted(files.items()))
    manifest = {
        "format": FORMAT,
        "step": step,
        "world_size": world_size,
        "eval_loss": eval_loss,
        "files": files,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    _fsync_dir(tmp)
    if final.exists():  # e.g. a corrupt checkpoint of the same step that we resumed past
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    deleted = prune(root, keep, current=tmp.name, keep_best=keep_best)
    nbytes = sum(f.stat().st_size for f in final.iterdir())
    return final, nbytes, deleted


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


def eval_loss_of(path: str | Path) -> float | None:
    """The eval loss a checkpoint's manifest records (None: not evaluated, or no readable manifest)."""
    try:
        loss = json.loads((Path(path) / "manifest.json").read_text()).get("eval_loss")
    except (OSError, ValueError, AttributeError):
        return None
    return float(loss) if isinstance(loss, int | float) and not isinstance(loss, bool) else None


def best(output_path: str | Path) -> tuple[int, Path] | None:
    """(step, dir) of the checkpoint with the lowest recorded eval loss (ties: the newest), or None."""
    scored = [(loss, -s, s, p) for s, p in step_dirs(output_path) if (loss := eval_loss_of(p)) is not None]
    return min(scored)[2:] if scored else None


def prune(
    output_path: str | Path, keep: int = KEEP, current: str = "", keep_best: bool = True
) -> list[tuple[int, Path]]:
    """Keep the newest `keep` (0 = all) checkpoints and, with keep_best, the best by eval loss;
    remove temporary dirs left by killed runs. Returns the (step, dir) of each checkpoint deleted."""
    deleted = []
    if keep > 0:
        dirs = step_dirs(output_path)
        kept = {s for s, _ in dirs[:keep]}
        if keep_best and (found := best(output_path)) is not None:
            kept.add(found[0])
        for step, path in dirs:
            if step not in kept:
                shutil.rmtree(path, ignore_errors=True)
                deleted.append((step, path.resolve()))
    for stale in Path(output_path).glob("step-*.tmp-*"):
        if stale.name != current:
            shutil.rmtree(stale, ignore_errors=True)
    return deleted


def verify(path: str | Path) -> dict:
    """Return the manifest if every listed file exists and matches its sha256, else raise."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        files = manifest["files"]
        required = REQUIRED[manifest.get("format", 1)]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: no readable manifest.json ({e})") from None
    for name in required:
        if name not in files:
            raise CheckpointError(f"{path}: manifest does not list {name}")
    for name in files:
        if not (path / name).is_file():
            raise CheckpointError(f"{path}: {name} is missing")
    actual = hash_files(path, files)
    for name, info in files.items():
        if actual[name]["sha256"] != info.get("sha256"):
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


def manifest_format(path: str | Path) -> int:
    return json.loads((Path(path) / "manifest.json").read_text()).get("format", 1)


def load_model(path: str | Path) -> dict:
    """The full weights of a format-1 checkpoint."""
    return load_file(Path(path) / "model.safetensors")


def load_state(path: str | Path) -> dict:
    return torch.load(Path(path) / "state.pt", weights_only=True)


def load_rank_state(path: str | Path, rank: int) -> dict:
    f = Path(path) / f"rank-{rank}.pt"
    if not f.is_file():
        raise CheckpointError(f"{path}: rank-{rank}.pt is missing (written by a run with fewer ranks?)")
    return torch.load(f, weights_only=True)
