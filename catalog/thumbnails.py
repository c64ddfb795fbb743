"""Thumbnails for image data rows, made once and kept on disk beside the catalog.

A thumbnail is a small JPEG under ``<db>.cache/thumbs/`` (for a catalog in a folder this process may
not write, under a private folder in the system's temp folder), named after the source path, its size on
disk, its modification time and the thumbnail size, so an edited image gets a new one. The folder is
derived data: deleting it only costs the time to make the thumbnails again.

:func:`data_uri` serves a thumbnail as a ``data:image/jpeg;base64,...`` address from a small in-process
cache (a thumbnail's file name changes whenever its source changes, so a cached entry never goes stale).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageOps

THUMB_SIZE = 256
_QUALITY = 82
_URI_BUDGET = 64 * 1024 * 1024  # bytes of base64 text kept in memory (about 5,000 photo thumbnails)
_uris: OrderedDict[str, str] = OrderedDict()
_uri_bytes = 0
_uri_lock = threading.Lock()


def thumbs_dir(store) -> Path:
    """``<db>.cache/thumbs``; where this process may not write beside the catalog (a read-only mount,
    a folder of another user's), a private folder of this user's in the system's temp folder."""
    with _dirs_lock:
        found = _dirs.get(str(store.path))
        if found is None:
            found = _dirs[str(store.path)] = _choose_dir(store)
        return found


_dirs: dict[str, Path] = {}
_dirs_lock = threading.Lock()


def _choose_dir(store) -> Path:
    beside = store.cache_dir if store.cache_dir.exists() else store.path.parent
    if os.access(beside, os.W_OK):
        return store.cache_dir / "thumbs"
    key = hashlib.sha1(str(store.path).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    private = Path(tempfile.gettempdir()) / f"catalog-thumbs-{os.getuid()}-{key}"
    try:
        private.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(private)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
            return private
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="catalog-thumbs-"))  # someone else's or unusable: one of our own


def is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://", "s3://", "gs://"))


def _key(source: str, st: os.stat_result, size: int) -> str:
    text = f"{source}|{st.st_size}|{st.st_mtime_ns}|{size}"
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def _make(source: Path, target: Path, size: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as img:
        img.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale
        img = ImageOps.exif_transpose(img)
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            img = img.point(lambda v: v / 256).convert("L")
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            back = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(back, img)
        img = img.convert("RGB")
        img.thumbnail((size, size), Image.Resampling.LANCZOS if max(img.size) < 4 * size else Image.Resampling.BILINEAR)
        tmp = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        img.save(tmp, "JPEG", quality=_QUALITY, optimize=False)
    os.replace(tmp, target)


def thumbnail(store, row: dict, size: int = THUMB_SIZE, make: bool = True) -> Path | None:
    """The thumbnail file of an image row (made now if missing); None for text, URLs and unreadable files."""
    if row.get("media_type") != "image":
        return None
    source = str(row.get("row_data") or "")
    if not source or is_remote(source):
        return None
    try:
        st = os.stat(source)
    except OSError:
        return None
    key = _key(source, st, size)
    target = thumbs_dir(store) / key[:2] / f"{key}.jpg"
    if target.exists():
        return target
    if not make:
        return None
    try:
        _make(Path(source), target, size)
    except Exception:  # noqa: BLE001 - an unreadable image shows as a placeholder, never as an error
        return None
    return target


def thumbnails(store, rows, size: int = THUMB_SIZE, workers: int = 4) -> dict[str, Path | None]:
    """Thumbnails for many rows (``{row id: path or None}``); missing ones are made in parallel."""
    out = {r["id"]: thumbnail(store, r, size, make=False) for r in rows}
    missing = [r for r in rows if out[r["id"]] is None and r.get("media_type") == "image"]
    if len(missing) == 1:
        out[missing[0]["id"]] = thumbnail(store, missing[0], size)
    elif missing:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for r, p in zip(missing, pool.map(lambda r: thumbnail(store, r, size), missing)):
                out[r["id"]] = p
    return out


def data_uri(path: Path | str) -> str | None:
    """The thumbnail file at ``path`` as a ``data:`` address (read once, then kept in memory); None if unreadable."""
    global _uri_bytes
    key = str(path)
    with _uri_lock:
        got = _uris.get(key)
        if got is not None:
            _uris.move_to_end(key)
            return got
    try:
        data = Path(key).read_bytes()
    except OSError:
        return None
    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    with _uri_lock:
        if key not in _uris:
            _uris[key] = uri
            _uri_bytes += len(uri)
            while _uri_bytes > _URI_BUDGET and len(_uris) > 1:
                _, old = _uris.popitem(last=False)
                _uri_bytes -= len(old)
    return uri


def clear(store) -> None:
    """Delete every cached thumbnail (they are made again on demand)."""
    global _uri_bytes
    shutil.rmtree(thumbs_dir(store), ignore_errors=True)
    with _uri_lock:
        _uris.clear()
        _uri_bytes = 0
