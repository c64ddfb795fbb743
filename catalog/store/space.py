"""Disk space: telling a full disk apart from other failures, and saying so in one line.

A write that runs out of space (the catalog file, its write-ahead log, DuckDB's spill files, a scratch
file, the vector cache) fails as a whole: the transaction rolls back, scratch files are removed, and
the catalog is usable again once space is freed. The message names the folder, what is free and,
where the operation knows it, about how much it needs.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from ..errors import CatalogError

# what DuckDB (and the C library, through it) says when a write finds no space
_FULL_WORDS = ("no space left on device", "disk quota exceeded", "not enough space", "out of disk space",
               "disk is full")
FULL_HINT = "free some space on that disk (or move the catalog to a bigger one) and run it again"


class DiskFull(CatalogError):
    """A write found no space on the disk; nothing of it was kept."""


def is_out_of_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return not isinstance(exc, OSError) and any(w in text for w in _FULL_WORDS)


def free_bytes(folder: Path) -> int | None:
    """Free bytes on the disk of ``folder`` (or of its nearest existing parent)."""
    folder = Path(folder)
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def size_text(n: float) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def disk_full(folder: Path, needed: float | None = None, what: str = "the write",
              nothing: str = "nothing was written", freed: int = 0) -> DiskFull:
    """``not enough disk space in FOLDER: 1.2 MB free, the import needs about 30.0 MB; nothing was
    imported`` (``needed`` where it is known; ``freed``: bytes of the operation's own scratch files,
    still on the disk now and removed as the error goes up, counted as free)."""
    free = free_bytes(folder)
    free = None if free is None else free + freed
    parts = [f"{size_text(free)} free" if free is not None else "the disk is full"]
    if needed:
        parts.append(f"{what} needs about {size_text(needed)}")
    return DiskFull(f"not enough disk space in {folder}: {', '.join(parts)}; {nothing}", field="db",
                    hint=FULL_HINT)
