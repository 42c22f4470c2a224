"""Atomic writes: a crash never leaves a half-written cache, checkpoint or report behind."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    Works for a file or a directory written at the yielded path (e.g. `Dataset.save_to_disk`).
    A file is replaced in one step, so readers see the old or the new version. A directory
    takes two renames (the old one aside, the new one in), so a reader arriving in between
    finds nothing: whoever replaces a directory that others read must hold a lock, as
    `mmcourse.data.cache.cached_dataset` does.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    staged = tmp / target.name
    try:
        yield staged
        if not staged.exists():
            raise FileNotFoundError(f"nothing was written to {staged} inside atomic_path({target})")
        if target.is_dir() and not target.is_symlink():
            # os.replace cannot overwrite a non-empty directory: move the old one aside first.
            old = tmp / (target.name + ".old")
            os.replace(target, old)
        os.replace(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` atomically (UTF-8) and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
