"""Derived, rebuildable copies of an embedding's vectors beside the DuckDB file.

For each embedding the cache holds the L2-normalised float32 matrix (memory-mapped) and the row ids
in the same order (ascending row id, so a position lookup is a binary search), under
``<db>.cache/<embedding id>-v<version>``. The embedding's ``version`` is bumped in the same
transaction as every change to its vectors, so a cache whose version differs is stale and is
rebuilt; nothing here must be kept.

The loaded copies are also kept in memory for the life of the process, keyed by (catalog file,
embedding id, version) and shared by every :class:`VectorCache` of the same file.
"""

from __future__ import annotations

import os
import contextlib
import errno
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import codes
from ..errors import VectorsChanged
from ..store import registered, scalar
from ..store.space import disk_full, is_out_of_space

_lock = threading.Lock()
_memo: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]] = {}
_uuid_memo: dict[tuple[str, str, int], np.ndarray] = {}
_key_memo: dict[tuple[str, str, int], "KeyTable"] = {}
_BATCH_ROWS = 65_536
_READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)
_HEX_POSITIONS = [i for i in range(36) if i not in (8, 13, 18, 23)]


def _column_strings(col) -> np.ndarray:
    """An arrow string column as a ``U36`` numpy array."""
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype="U36")


def unit_rows(block) -> np.ndarray:
    """Rows divided by their L2 norm, as float32. A float32 vector's squared values can overflow
    (``1e20``) or underflow (``1e-25``) in float32, which would leave a zero or wrong row: rows whose
    float32 norm is not safely inside the range (or not finite) are normalised again in float64, so
    every non-zero float32 vector keeps its direction. The rest (all rows of real embeddings) stay in
    float32, three times faster. Zero rows stay zero."""
    m = np.asarray(block, dtype=np.float32)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        norms = np.linalg.norm(m, axis=-1, keepdims=True)
    risky = ~((norms > _SAFE_NORM[0]) & (norms < _SAFE_NORM[1]))[..., 0]
    norms[risky] = 1.0
    out = np.ascontiguousarray(m / norms, dtype=np.float32)
    if risky.any():
        exact = m[risky].astype(np.float64)
        n64 = np.linalg.norm(exact, axis=-1, keepdims=True)
        n64[n64 == 0] = 1.0
        out[risky] = (exact / n64).astype(np.float32)
    return out


_SAFE_NORM = (1e-12, 1e18)  # float32 norms in here lost nothing to over- or underflow of the squares


def find_rows(ids: np.ndarray, row_ids) -> np.ndarray:
    """Positions of ``row_ids`` in a cache's sorted id array ``ids`` (``-1`` where a row has none)."""
    wanted = np.asarray(list(row_ids), dtype="U36")
    if len(ids) == 0 or len(wanted) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    return np.where(ids[at] == wanted, at, -1).astype(np.int64)


def uuid_bytes(ids: np.ndarray) -> np.ndarray:
    """Canonical UUID strings (``U36``) as an ``(n, 16)`` uint8 array of their bytes."""
    if len(ids) == 0:
        return np.empty((0, 16), dtype=np.uint8)
    codes = np.ascontiguousarray(ids, dtype="U36").view(np.uint32).reshape(len(ids), 36)[:, _HEX_POSITIONS]
    nibbles = np.where(codes >= 97, codes - 87, np.where(codes >= 65, codes - 55, codes - 48)).astype(np.uint8)
    return np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2])


class KeyTable:
    """The global_key of every cached row (same order), stored compactly as UTF-8 bytes + offsets."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray):
        self.data, self.offsets = data, offsets
        self._order: np.ndarray | None = None  # positions in key order, made on the first find()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def find(self, keys) -> np.ndarray:
        """Positions of the rows whose global_key is each of ``keys`` (``-1`` where none is; ``''`` never
        matches). A binary search over the positions sorted by key (sorted once, in Arrow, per table:
        about 0.3 s and 8 bytes a row for 1M rows), so looking up an anchor needs no database query."""
        if self._order is None:
            n = len(self)
            arr = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(
                np.ascontiguousarray(self.offsets, dtype=np.int64)), pa.py_buffer(np.ascontiguousarray(self.data))])
            self._order = pc.sort_indices(arr).to_numpy().astype(np.int64)
        order, buf, off = self._order, self.data, self.offsets
        out = np.full(len(keys), -1, dtype=np.int64)
        for i, key in enumerate(keys):
            want = key.encode("utf-8") if isinstance(key, str) else b""
            if not want:
                continue
            lo, hi = 0, len(order)
            while lo < hi:  # the first sorted place whose key is not below ``want``
                mid = (lo + hi) // 2
                p = order[mid]
                if bytes(buf[off[p]:off[p + 1]]) < want:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < len(order) and bytes(buf[off[order[lo]]:off[order[lo] + 1]]) == want:
                out[i] = order[lo]
        return out

    def get(self, positions) -> list[str]:
        buf, off = self.data, self.offsets
        return [bytes(buf[off[p]:off[p + 1]]).decode("utf-8") for p in np.asarray(positions, dtype=np.int64)]

    @classmethod
    def from_keys(cls, keys: list[str]) -> "KeyTable":
        encoded = [k.encode("utf-8") for k in keys]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets)

    def save(self, folder: Path) -> None:
        tag = f"tmp{os.getpid()}-{threading.get_ident()}"
        np.save(folder / f"keys.{tag}.npy", self.data)
        np.save(folder / f"key_offsets.{tag}.npy", self.offsets)
        os.replace(folder / f"keys.{tag}.npy", folder / "keys.npy")
        os.replace(folder / f"key_offsets.{tag}.npy", folder / "key_offsets.npy")


def _versions(cache_dir: Path, embedding_id: str) -> list[Path]:
    """The finished cache folders of an embedding (``<id>-v<N>``). Folders being built
    (``<id>-v<N>.tmp<pid>-<thread>``) are not listed: another process may be filling one; those a dead
    process left behind are swept when the catalog is opened for writing (:mod:`catalog.store.scratch`)."""
    if not cache_dir.exists():
        return []
    return [p for p in cache_dir.glob(f"{embedding_id}-v*") if p.name[len(embedding_id) + 2:].isdigit()]


class VectorCache:
    """The vector caches of one catalog file (``store``)."""

    def __init__(self, store):
        self.store = store

    def _folder(self, embedding_id: str, version: int) -> Path:
        return self.store.cache_dir / f"{embedding_id}-v{version}"

    def _key(self, emb) -> tuple[str, str, int]:
        return (str(self.store.path), emb.id, emb.version)

    def invalidate(self, embedding_id: str) -> None:
        """Drop every cached copy of an embedding (they are rebuilt on demand)."""
        store = self.store
        with _lock:  # held while removing too: a build of this process (under the lock) is never cut short
            for memo in (_memo, _uuid_memo, _key_memo):
                for key in [k for k in memo if k[0] == str(store.path) and k[1] == embedding_id]:
                    del memo[key]
            codes.forget(store.path, embedding_id)
            for p in _versions(store.cache_dir, embedding_id):
                shutil.rmtree(p, ignore_errors=True)

    def forget(self, embedding_id: str) -> None:
        """The embedding is gone: drop its cached copies (:meth:`invalidate`) and the derived files named
        by it in the cache folder's subfolders (its maps, ``maps/<embedding id>-…``)."""
        self.invalidate(embedding_id)
        with contextlib.suppress(OSError):
            for p in self.store.cache_dir.glob(f"*/{embedding_id}-*"):
                if p.is_file():
                    p.unlink(missing_ok=True)

    def load(self, emb) -> tuple[np.ndarray, np.ndarray]:
        """``(row_ids, normalised matrix)`` for the embedding's current version, building it if needed."""
        key = self._key(emb)
        with _lock:
            hit = _memo.get(key)
            if hit is not None:
                return hit
            folder = self._folder(emb.id, emb.version)
            if not (folder / "ids.npy").exists():
                for stale in _versions(self.store.cache_dir, emb.id):
                    if stale != folder:
                        shutil.rmtree(stale, ignore_errors=True)
                try:
                    self._build(emb, folder)
                except OSError as exc:
                    if exc.errno not in _READ_ONLY_ERRNOS:
                        raise
                    return self._load_private(emb, key)
            ids = np.load(folder / "ids.npy")
            mat = np.load(folder / "vectors.npy", mmap_mode="r")
            for old in [k for k in _memo if k[:2] == key[:2]]:
                del _memo[old]
            _memo[key] = (ids, mat)
            return ids, mat

    def _load_private(self, emb, key) -> tuple[np.ndarray, np.ndarray]:
        """A catalog folder this process may not write (a read-only mount, say): build the cache in a
        private temporary folder, map it, and remove the folder at once (the mapping keeps the data
        until the process lets go of it). Called with ``_lock`` held."""
        private = Path(tempfile.mkdtemp(prefix="catalog-cache-"))
        try:
            folder = private / "cache"
            self._build(emb, folder)
            ids = np.load(folder / "ids.npy")
            mat = np.load(folder / "vectors.npy", mmap_mode="r")
        finally:
            shutil.rmtree(private, ignore_errors=True)
        for old in [k for k in _memo if k[:2] == key[:2]]:
            del _memo[old]
        _memo[key] = (ids, mat)
        return ids, mat

    def load_uuids(self, emb) -> np.ndarray:
        """The cache's row ids as ``(n, 16)`` UUID bytes (same order as :meth:`load`), for fast joins."""
        ids, _ = self.load(emb)
        key = self._key(emb)
        with _lock:
            hit = _uuid_memo.get(key)
            if hit is not None and len(hit) == len(ids):
                return hit
            path = self._folder(emb.id, emb.version) / "uuids.npy"
            try:
                arr = np.load(path)
            except (OSError, ValueError):
                arr = None
            if arr is None or arr.shape != (len(ids), 16):
                arr = uuid_bytes(ids)
                tmp = path.with_name(f"uuids.tmp{os.getpid()}-{threading.get_ident()}.npy")
                try:
                    np.save(tmp, arr)
                    os.replace(tmp, path)
                except OSError:  # a read-only, full or vanished cache folder: keep it in memory only
                    with contextlib.suppress(OSError):
                        tmp.unlink(missing_ok=True)
            for old in [k for k in _uuid_memo if k[:2] == key[:2]]:
                del _uuid_memo[old]
            _uuid_memo[key] = arr
            return arr

    def load_keys(self, emb) -> KeyTable:
        """Global keys of the cached rows (a row's key never changes while the row exists)."""
        ids, _ = self.load(emb)
        key = self._key(emb)
        with _lock:
            hit = _key_memo.get(key)
            if hit is not None:
                return hit
            folder = self._folder(emb.id, emb.version)
            try:
                table = KeyTable(np.load(folder / "keys.npy", mmap_mode="r"), np.load(folder / "key_offsets.npy"))
            except (OSError, ValueError):
                table = None
            if table is None or len(table) != len(ids):
                cached = pa.table({"i": np.arange(len(ids)), "id": pa.array(ids.tolist(), pa.string())})
                with self.store.connect() as con, registered(con, cached, "cached_ids") as t:
                    rows = con.execute(
                        f"SELECT coalesce(d.global_key, '') FROM {t} c LEFT JOIN datarows d "
                        "ON d.id = CAST(c.id AS UUID) ORDER BY c.i").fetchall()
                table = KeyTable.from_keys([r[0] for r in rows])
                try:
                    table.save(folder)
                except OSError:
                    pass
            for old in [k for k in _key_memo if k[:2] == key[:2]]:
                del _key_memo[old]
            _key_memo[key] = table
            return table

    def _build(self, emb, folder: Path) -> None:
        """Write the cache of ``emb`` to a temporary folder and rename it into place; a failure (a full
        disk among them) removes the temporary folder and leaves no cache."""
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}-{threading.get_ident()}")
        shutil.rmtree(tmp, ignore_errors=True)
        need = [0]
        try:
            tmp.mkdir(parents=True)  # a read-only folder fails here, and the caller builds elsewhere
            self._write(emb, tmp, need)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if is_out_of_space(exc):
                raise disk_full(self.store.cache_dir, needed=need[0] or None,
                                what=f"the vector cache of embedding {emb.name}",
                                nothing="no cache was kept, the catalog is unchanged") from None
            raise
        try:
            os.replace(tmp, folder)
        except OSError:  # another process built it first
            shutil.rmtree(tmp, ignore_errors=True)

    def _write(self, emb, tmp: Path, need: list) -> None:
        with self.store.transaction() as con:  # one snapshot: the version and the vectors agree
            if scalar(con, "SELECT version FROM embeddings WHERE id = ?", [emb.id]) != emb.version:
                raise VectorsChanged(f"the vectors of embedding {emb.name} changed during the search; run it again")
            # Row ids and global keys first (small), then the vectors without any join or sort.
            head = con.sql(
                "SELECT CAST(v.row_id AS VARCHAR) AS id, coalesce(d.global_key, '') AS global_key FROM vectors v "
                "LEFT JOIN datarows d ON d.id = v.row_id WHERE v.embedding_id = ? ORDER BY v.row_id",
                params=[emb.id]).to_arrow_table()
            ids = _column_strings(head.column(0))
            keys = head.column(1).to_pylist()
            if len(ids) > 1 and not bool(np.all(ids[:-1] < ids[1:])):  # keep the documented row-id order
                order = np.argsort(ids, kind="stable")
                ids, keys = ids[order], [keys[i] for i in order]
            n = len(ids)
            need[0] = n * (emb.dims * 4 + 36 * 2) + sum(len(k) for k in keys)
            mat = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, emb.dims))
            _reserve(tmp / "vectors.npy")  # a full disk fails here, not as a SIGBUS on a mapped page
            for s in range(0, n, _BATCH_ROWS):  # touch the pages in order first: scattered first writes
                mat[s:s + _BATCH_ROWS] = 0.0     # into a fresh file cost a page fault each
            # The vectors are read in storage order (sorting 4·dims-byte rows in the database is what
            # makes an ORDER BY slow) and each batch is written to its row-id position.
            reader = con.sql(
                "SELECT CAST(row_id AS VARCHAR) AS row_id, vector FROM vectors WHERE embedding_id = ?",
                params=[emb.id],
            ).to_arrow_reader(_BATCH_ROWS)
            filled = 0
            for batch in reader:
                k = batch.num_rows
                if k == 0:
                    continue
                pos = np.searchsorted(ids, _column_strings(batch.column(0)))
                flat = batch.column(1).flatten().to_numpy()
                block = unit_rows(flat.reshape(k, emb.dims))
                if np.all(pos[1:] == pos[:-1] + 1):
                    mat[pos[0]:pos[0] + k] = block
                else:
                    mat[pos] = block
                filled += k
            if filled != n:
                raise VectorsChanged(f"the vectors of embedding {emb.name} changed during the search; run it again")
            mat.flush()
            del mat
        np.save(tmp / "ids.npy", ids)
        KeyTable.from_keys(keys).save(tmp)


def _reserve(path: Path) -> None:
    """Allocate a (sparse) file's blocks now, so that writing through a memory map cannot run out of
    space; where the file system cannot allocate ahead, nothing is done."""
    with open(path, "r+b") as fh:
        try:
            os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
        except OSError as exc:
            if is_out_of_space(exc):
                raise
        except AttributeError:  # pragma: no cover - no posix_fallocate (macOS)
            pass
