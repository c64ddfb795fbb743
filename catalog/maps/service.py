"""Embedding maps: a cached 2-D projection per embedding version, and what is drawn and selected on it.

A map is derived (rebuildable) data: ``<db>.cache/maps/<embedding id>-v<version>-<method>.npy``
holds the ``(n, 2)`` float32 coordinates, one per row of the vector cache of that version and in
its order (ascending row id), and a ``.json`` beside it says how it was made. When the embedding's
vectors change (import, compute, delete), its version moves on and the map is **stale**: reading it
raises a :class:`CatalogError` that says so (compute it again); computing a new one removes the
maps of older versions. The ``.json`` also holds a digest of the row ids the map was made for, and a
map is only read for exactly those rows (so a map left by an earlier catalog file of the same path, or
by an embedding of the same id, is never read for other rows). Deleting an embedding removes its
maps. Where the catalog folder cannot be written, a map lives in memory only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import CatalogError, NotFound
from ..export import check_format, write_records
from ..store import registered
from . import projection
from .polygon import PointIndex, box_polygon

METHODS = ("pca", "umap")
COLOUR_BY = ("label", "metadata", "score")
MAX_FIELD_CHARS = 200
_FIELD = re.compile(r"^[^\"\\\x00-\x1f]+$")
_lock = threading.Lock()
_memo: dict[Path, tuple[float, "EmbeddingMap"]] = {}


@dataclass
class EmbeddingMap:
    """A computed map: ``xy[i]`` is where row ``ids[i]`` lies (ids in ascending order)."""

    embedding_id: str
    embedding: str
    version: int
    method: str
    computed_at: str
    explained: list[float] | None
    ids: np.ndarray = field(repr=False)
    xy: np.ndarray = field(repr=False)
    digest: str | None = field(default=None, repr=False)  # of the row ids it was made for (:func:`rows_digest`)

    def __len__(self) -> int:
        return len(self.ids)

    @functools.cached_property
    def index(self) -> PointIndex:
        """The points sorted for polygon selection (built on first use, kept with the map)."""
        return PointIndex(self.xy)

    def info(self, current: bool = True) -> dict:
        return {"embedding_id": self.embedding_id, "embedding": self.embedding, "version": self.version,
                "method": self.method, "points": len(self), "computed_at": self.computed_at,
                "explained_variance": self.explained, "current": current}


def check_method(method) -> str:
    if method not in METHODS:
        raise CatalogError(f"map method {method!r} is not known; use {' or '.join(METHODS)}", field="method")
    return method


class Maps:
    """The maps of one catalog: ``cache`` gives the vectors, ``searcher`` the scores of a query."""

    def __init__(self, store, cache, embeddings, searcher):
        self.store, self.cache, self.embeddings, self.searcher = store, cache, embeddings, searcher

    @property
    def folder(self) -> Path:
        return self.store.cache_dir / "maps"

    # -- computing and reading --------------------------------------------------------------------
    def compute(self, embedding, method: str = "pca", progress=None) -> EmbeddingMap:
        """Project the embedding's current vectors to 2-D with ``method`` (``pca`` or ``umap``) and cache
        the map; ``progress(done, total)`` as rows are projected."""
        check_method(method)
        emb = self.embeddings.get_embedding(embedding)
        ids, matrix = self.cache.load(emb)
        if len(ids) == 0:
            raise CatalogError(f"embedding {emb.name} has no vectors; import or compute them first",
                               field="embedding")
        run = projection.pca if method == "pca" else projection.umap
        xy, explained = run(matrix, progress=progress)
        made = EmbeddingMap(emb.id, emb.name, emb.version, method, _now(), explained, ids, xy,
                            rows_digest(self.cache.load_uuids(emb)))
        self._save(made)
        return made

    def get(self, embedding, method: str | None = None) -> EmbeddingMap:
        """The embedding's map for its current vectors (of ``method``, else the latest computed one); a
        :class:`NotFound` when there is none, or only one made from older vectors (stale)."""
        if method is not None:
            check_method(method)
        emb = self.embeddings.get_embedding(embedding)
        found = self._files(emb.id, method)
        current = [f for f in found if f[1] == emb.version]
        if not current:
            if found:
                raise NotFound(f"the map of embedding {emb.name} was made from older vectors (version "
                               f"{found[0][1]}, now {emb.version})", field="embedding", hint="compute the map again")
            what = f"{method} map" if method else "map"
            raise NotFound(f"embedding {emb.name} has no {what} yet", field="embedding", hint="compute the map")
        path = current[0][0]
        ids, _ = self.cache.load(emb)
        return self._read(path, emb, ids, rows_digest(self.cache.load_uuids(emb)))

    def info(self, embedding) -> dict | None:
        """What the latest map of the embedding is (method, version, points, ``current``), or None."""
        emb = self.embeddings.get_embedding(embedding)
        found = self._files(emb.id, None)
        if not found:
            return None
        meta = _meta(found[0][0])
        if meta is None:
            return None
        meta.pop("rows_digest", None)
        meta["current"] = found[0][1] == emb.version
        return meta

    # -- selecting ----------------------------------------------------------------------------------
    def select_in_polygon(self, embedding, polygon) -> np.ndarray:
        """Row ids (``U36`` array, ascending) of the map's points inside ``polygon`` or on its boundary
        (``[(x, y), ...]`` or ``{"x": [...], "y": [...]}``); see :mod:`catalog.maps.polygon`."""
        made = self.get(embedding)
        return made.ids[made.index.select(polygon)]

    def select_in_box(self, embedding, x0, y0, x1, y1) -> np.ndarray:
        """Row ids of the points in the rectangle between two corners (its edges included)."""
        return self.select_in_polygon(embedding, box_polygon(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))

    # -- colours ------------------------------------------------------------------------------------------
    def point_values(self, embedding, by: str, field: str | None = None, spec=None) -> np.ndarray:
        """One value per point of the current map, in its order: ``label`` (each row's first label
        A–Z, None when unlabeled), ``metadata`` (the text of metadata ``field``, None when absent) or
        ``score`` (against ``spec``, a SearchSpec on this embedding; NaN for rows it leaves out)."""
        if by not in COLOUR_BY:
            raise CatalogError(f"points are coloured by {', '.join(COLOUR_BY)}; not {by!r}", field="by")
        made = self.get(embedding)
        emb = self.embeddings.get_embedding(embedding)
        if by == "score":
            if spec is None:
                raise CatalogError("colouring by score needs a search", field="spec")
            values = np.full(len(made), np.nan, dtype=np.float64)
            positions, scores = self.searcher.position_scores(spec.replace(embedding=emb.id))
            values[positions] = scores
            return values
        if by == "label":
            sql, params = ("SELECT c.i, l.label FROM {t} c JOIN (SELECT row_id, min(label) AS label FROM labels "
                           "GROUP BY row_id) l ON l.row_id = c.id"), []
        else:
            sql, params = ("SELECT c.i, json_extract_string(d.metadata, ?) FROM {t} c JOIN datarows d "
                           "ON d.id = c.id"), [_json_path(field)]
        values = np.full(len(made), None, dtype=object)
        table = _id_table(self.cache.load_uuids(emb))
        with self.store.connect() as con, registered(con, table, "map_points") as t:
            got = con.execute(sql.format(t=t), params).fetchnumpy()
        cols = list(got.values())
        values[np.asarray(cols[0], dtype=np.int64)] = np.asarray(cols[1], dtype=object)
        return values

    # -- export ---------------------------------------------------------------------------------------------
    def export(self, embedding, out, fmt: str = "ndjson") -> int:
        """Write the current map (id, global_key, x, y per point, ascending id) to a text stream or a
        path as ``ndjson`` or ``csv``; returns the number of points."""
        check_format(fmt)
        made = self.get(embedding)
        keys = self.cache.load_keys(self.embeddings.get_embedding(embedding))

        def records():
            for s in range(0, len(made), 10_000):
                chunk = made.xy[s:s + 10_000].astype(np.float64)
                for i, k, (x, y) in zip(made.ids[s:s + 10_000].tolist(), keys.get(range(s, min(len(made), s + 10_000))),
                                        chunk.tolist(), strict=True):
                    yield {"id": i, "global_key": k, "x": x, "y": y}

        columns = ["id", "global_key", "x", "y"]
        if isinstance(out, (str, os.PathLike)):
            with open(out, "w", encoding="utf-8", newline="") as fh:
                return write_records(fh, records(), fmt, columns)
        return write_records(out, records(), fmt, columns)

    # -- files ----------------------------------------------------------------------------------------------
    def _files(self, embedding_id: str, method: str | None) -> list[tuple[Path, int, str]]:
        """``(path, version, method)`` of the embedding's map files (and in-memory maps), newest first."""
        pattern = re.compile(rf"^{re.escape(embedding_id)}-v(\d+)-({'|'.join(METHODS)})\.npy$")
        found = {}
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.folder):
                m = pattern.match(entry.name)
                if m and (method is None or m.group(2) == method):
                    found[Path(entry.path)] = (entry.stat().st_mtime_ns, int(m.group(1)), m.group(2))
        with _lock:
            for path, (stamp, made) in _memo.items():
                if path.parent == self.folder and made.embedding_id == embedding_id and path not in found \
                        and (method is None or made.method == method):
                    found[path] = (stamp, made.version, made.method)
        return [(p, v, m) for p, (_, v, m) in sorted(found.items(), key=lambda kv: kv[1][0], reverse=True)]

    def _save(self, made: EmbeddingMap) -> None:
        path = self.folder / f"{made.embedding_id}-v{made.version}-{made.method}.npy"
        meta = made.info()
        del meta["current"]
        meta["rows_digest"] = made.digest
        tag = f".tmp{os.getpid()}-{threading.get_ident()}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for old, version, _ in self._files(made.embedding_id, None):
                if version != made.version:
                    old.unlink(missing_ok=True)
                    old.with_suffix(".json").unlink(missing_ok=True)
            np.save(path.with_name(path.stem + tag + ".npy"), made.xy)
            path.with_name(path.stem + tag + ".json").write_text(json.dumps(meta), encoding="utf-8")
            os.replace(path.with_name(path.stem + tag + ".json"), path.with_suffix(".json"))
            os.replace(path.with_name(path.stem + tag + ".npy"), path)
            stamp = path.stat().st_mtime_ns
        except OSError:  # a read-only or full catalog folder: the map lives in this process only
            for leftover in (path.with_name(path.stem + tag + ".npy"), path.with_name(path.stem + tag + ".json")):
                with contextlib.suppress(OSError):
                    leftover.unlink(missing_ok=True)
            stamp = dt.datetime.now().timestamp() * 1e9
        with _lock:
            for old in [p for p, (_, m) in _memo.items() if m.embedding_id == made.embedding_id and p.parent == path.parent]:
                del _memo[old]
            _memo[path] = (stamp, made)

    def _read(self, path: Path, emb, ids, digest: str) -> EmbeddingMap:
        with _lock:
            hit = _memo.get(path)
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = None
        if hit is not None and (stamp is None or hit[0] == stamp) and hit[1].digest == digest:
            return hit[1]
        meta = _meta(path)
        try:
            xy = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            xy = None
        if meta is None or xy is None or xy.shape != (len(ids), 2) or meta.get("rows_digest") != digest:
            raise NotFound(f"the map of embedding {emb.name} is damaged, incomplete or was made for other rows",
                           field="embedding", hint="compute the map again")
        made = EmbeddingMap(emb.id, emb.name, emb.version, meta["method"], meta["computed_at"],
                            meta.get("explained_variance"), ids, xy, digest)
        with _lock:
            _memo[path] = (stamp, made)
        return made


def rows_digest(uuids: np.ndarray) -> str:
    """A digest of a map's rows: their ids as UUID bytes, in the map's order."""
    return hashlib.blake2b(np.ascontiguousarray(uuids).tobytes(), digest_size=16).hexdigest()


def _meta(path: Path) -> dict | None:
    with _lock:
        hit = _memo.get(path)
    if hit is not None:
        return hit[1].info()
    try:
        return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _json_path(name) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_FIELD_CHARS or not _FIELD.match(name):
        raise CatalogError(f"a metadata `field` is a dotted name of at most {MAX_FIELD_CHARS} characters "
                           "without quotes or backslashes", field="field")
    name = name[len("metadata."):] if name.startswith("metadata.") else name
    return "$." + ".".join(f'"{part}"' for part in name.split("."))


def _id_table(uuids: np.ndarray) -> pa.Table:
    raw = np.ascontiguousarray(uuids)
    ids = pa.ExtensionArray.from_storage(
        pa.uuid(), pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(raw), [None, pa.py_buffer(raw)]))
    return pa.table({"i": pa.array(np.arange(len(raw), dtype=np.int64)), "id": ids})


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
