"""Uniqueness and outliers: how far each row lies from its nearest neighbours, on the catalog's score.

For an embedding with n rows and ``K`` neighbours (default 10), each row r gets

    uniqueness(r) = 1 − (1/K') · Σ score(r, j)   over the K' = min(K, n − 1) nearest other rows j

where ``score`` is the one similarity score (PRODUCT.md §3) and "nearest" is by exact L1 distance on
the normalised vectors (:func:`catalog.search.l1_knn.knn_l1`, ties by row id). It lies in [0, 1]: 0 for a
row with K exact copies, about 0.56 for a row among unrelated random directions; higher is rarer. A
catalog of one row gives it 1 (nothing is like it). The **outliers** are the rows of highest uniqueness
(the least dense places).

The scores are derived data: one table row per data row (``uniqueness``) and one run per embedding
(``uniqueness_runs``: the embedding's vector version they were computed at, K, the count). When the
embedding's vectors change (import, compute, row deletion bump its version) the run is *stale*: every
read (outliers, sorting or filtering a search by uniqueness) refuses with an error that says to compute
it again; :meth:`Uniqueness.compute` replaces the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..errors import CatalogError
from ..filters import compile_filter
from ..scoring import score_from_l1
from ..search.l1_knn import knn_l1
from ..store import one, registered

DEFAULT_NEIGHBOURS = 10
MAX_NEIGHBOURS = 1_000     # K: the kNN lists are n × (K + 1); far more neighbours than a density needs
MAX_OUTLIERS = 100_000     # rows one outliers call returns
COMPUTE_HINT = "compute the embedding's uniqueness (again) first"
QUERY_CHUNK = 8_192        # rows per kNN call (the progress bar moves per chunk)
AUTO_ROWS_ENV = "CATALOG_UNIQUENESS_AUTO_ROWS"
AUTO_ROWS = 100_000        # a stale run of at most this many rows is recomputed by the read that needs it


def check_count(value, name: str, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise CatalogError(f"`{name}` must be a whole number from {low} to {high:,} ({what}), not {value!r}",
                           field=name)
    return int(value)


def auto_rows() -> int:
    """Rows up to which a stale run is recomputed by the read that needs it: ``$CATALOG_UNIQUENESS_AUTO_ROWS``
    (0 turns it off; at most 10,000,000), else :data:`AUTO_ROWS`."""
    raw = os.environ.get(AUTO_ROWS_ENV, "").strip()
    if not raw:
        return AUTO_ROWS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 10_000_000:
        raise CatalogError(f"{AUTO_ROWS_ENV}={raw!r} must be a whole number of rows from 0 to 10,000,000 "
                           "(0: never recompute a stale run by itself)")
    return value


def uniqueness_scores(matrix: np.ndarray, neighbours: int = DEFAULT_NEIGHBOURS, progress=None) -> np.ndarray:
    """The uniqueness of every row of a normalised float32 ``matrix`` (see the module), as float64."""
    n, dims = matrix.shape
    k = min(check_count(neighbours, "neighbours", 1, MAX_NEIGHBOURS, "neighbours per row"), n - 1)
    out = np.ones(n, dtype=np.float64)
    if k <= 0:
        return out
    for start in range(0, n, QUERY_CHUNK):
        q = np.ascontiguousarray(matrix[start:start + QUERY_CHUNK], dtype=np.float32)
        dist, idx = knn_l1(q, matrix, k + 1)
        rows = np.arange(start, start + len(q))[:, None]
        drop = idx == rows  # the row itself, where it is in its list (an exact copy may come first)
        no_self = ~drop.any(axis=1)
        drop[no_self, -1] = True  # else its (k+1)-th neighbour
        others = dist[~drop].reshape(len(q), k)
        out[start:start + len(q)] = 1.0 - score_from_l1(others, dims).mean(axis=1)
        if progress is not None:
            progress(min(start + len(q), n), n)
    return np.clip(out, 0.0, 1.0)


@dataclass
class UniquenessReport:
    """One embedding's uniqueness run: the vector ``version`` it was computed at, ``neighbours`` (K),
    ``count`` rows scored; ``current`` is False once the embedding's vectors changed (stale)."""

    embedding: str
    version: int
    neighbours: int
    count: int
    current: bool = True
    computed_at: str | None = None

    def to_dict(self) -> dict:
        return {"embedding": self.embedding, "version": self.version, "neighbours": self.neighbours,
                "count": self.count, "current": self.current, "computed_at": self.computed_at}


class UniquenessStale(CatalogError):
    """The uniqueness of an embedding was not computed, or its vectors changed since."""


def _uuid_array(raw: np.ndarray) -> pa.Array:
    raw = np.ascontiguousarray(raw)
    return pa.ExtensionArray.from_storage(
        pa.uuid(), pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(raw), [None, pa.py_buffer(raw)]))


class Uniqueness:
    """Uniqueness of one catalog's rows per embedding: ``store`` (the DuckDB file), ``cache`` (the vector
    cache) and ``embeddings`` (resolves embedding references)."""

    def __init__(self, store, cache, embeddings):
        self.store = store
        self.cache = cache
        self.embeddings = embeddings

    def compute(self, embedding, neighbours: int = DEFAULT_NEIGHBOURS, progress=None) -> UniquenessReport:
        """Score every row of ``embedding`` (replacing its previous run) and return the run."""
        neighbours = check_count(neighbours, "neighbours", 1, MAX_NEIGHBOURS, "neighbours per row")
        emb = self.embeddings.get_embedding(embedding)
        ids, matrix = self.cache.load(emb)
        if len(ids) == 0:
            raise CatalogError(f"embedding {emb.name} has no vectors; import or compute them first",
                               field="embedding")
        scores = uniqueness_scores(matrix, neighbours, progress)
        table = pa.table({"row_id": _uuid_array(self.cache.load_uuids(emb)), "score": pa.array(scores)})
        with self.store.transaction() as con:
            version = one(con, "SELECT version FROM embeddings WHERE id = ?", [emb.id])
            if version is None or int(version[0]) != emb.version:
                raise CatalogError(f"the vectors of embedding {emb.name} changed while uniqueness was computed; "
                                   "run it again", field="embedding")
            con.execute("DELETE FROM uniqueness WHERE embedding_id = ?", [emb.id])
            con.execute("DELETE FROM uniqueness_runs WHERE embedding_id = ?", [emb.id])
            with registered(con, table, "uniqueness_new") as name:
                con.execute(f"INSERT INTO uniqueness SELECT ?, row_id, score FROM {name}", [emb.id])
            con.execute("INSERT INTO uniqueness_runs (embedding_id, version, neighbours, count) VALUES (?, ?, ?, ?)",
                        [emb.id, emb.version, neighbours, len(ids)])
        return self.status(emb)

    def status(self, embedding) -> UniquenessReport | None:
        """The embedding's run (``current`` False when stale), or None when it was never computed."""
        emb = self.embeddings.get_embedding(embedding)
        with self.store.connect() as con:
            row = one(con, "SELECT version, neighbours, count, CAST(computed_at AS VARCHAR) FROM uniqueness_runs "
                           "WHERE embedding_id = ?", [emb.id])
        if row is None:
            return None
        return UniquenessReport(emb.name, int(row[0]), int(row[1]), int(row[2]), int(row[0]) == emb.version, row[3])

    def require_current(self, embedding, field: str | None = None):
        """The embedding (resolved) when its uniqueness is current. A run made before the vectors changed
        is computed again here, with its K, when the embedding has at most :func:`auto_rows` rows and
        the catalog can be written; otherwise, and when it was never computed, :class:`UniquenessStale`."""
        emb = self.embeddings.get_embedding(embedding)
        run = self.status(emb)
        if run is None:
            raise UniquenessStale(f"uniqueness of embedding {emb.name} was not computed", field=field,
                                  hint=COMPUTE_HINT)
        if not run.current:
            rows = len(self.cache.load(emb)[0])
            if 0 < rows <= auto_rows() and not self.store.read_only:
                self.compute(emb, run.neighbours)
                return self.embeddings.get_embedding(emb.id)
            raise UniquenessStale(f"uniqueness of embedding {emb.name} is stale: its vectors changed since it was "
                                  f"computed (version {run.version}, now {emb.version}); with {rows:,} rows it is "
                                  f"not recomputed by itself (at most {auto_rows():,}: ${AUTO_ROWS_ENV})",
                                  field=field, hint=COMPUTE_HINT)
        return emb

    def outliers(self, embedding, n: int = 20, where=None) -> list[dict]:
        """The ``n`` most unique rows (the least dense), most unique first, ties by row id:
        ``[{"id", "global_key", "uniqueness"}]``. ``where`` (a filter) narrows the rows first."""
        n = check_count(n, "outliers", 1, MAX_OUTLIERS, "rows to return")
        emb = self.require_current(embedding, field="embedding")
        sql, params = compile_filter(where, alias="d", embedding=emb.id)
        with self.store.connect() as con:
            rows = con.execute(
                "SELECT CAST(d.id AS VARCHAR), d.global_key, u.score FROM uniqueness u JOIN datarows d ON "
                f"d.id = u.row_id WHERE u.embedding_id = ? AND ({sql}) ORDER BY u.score DESC, d.id LIMIT ?",
                [emb.id, *params, n]).fetchall()
        return [{"id": r[0], "global_key": r[1], "uniqueness": float(r[2])} for r in rows]

    def scores(self, embedding, row_ids) -> dict[str, float]:
        """``{row id: uniqueness}`` for the given rows that have one (current runs only)."""
        emb = self.require_current(embedding, field="embedding")
        ids = [str(r) for r in row_ids]
        if not ids:
            return {}
        with self.store.connect() as con:
            rows = con.execute("SELECT CAST(row_id AS VARCHAR), score FROM uniqueness WHERE embedding_id = ? AND "
                               "CAST(row_id AS VARCHAR) IN (SELECT unnest(?))", [emb.id, ids]).fetchall()
        return {r[0]: float(r[1]) for r in rows}
