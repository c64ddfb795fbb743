"""Shared by every backend: anchor vectors → query vectors, exclusions, filters, order and paging.

Results are ordered by score (:func:`select_order`) or, for the ``global_key`` and ``created`` sorts, by
that column of the data rows (:func:`select_by_column`, in the database); ties always by row id.

The score is :mod:`catalog.scoring`'s; backends only say which rows fall in the score range.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import CatalogError
from ..scoring import normalize
from ..store import registered
from .backends.base import Matches
from .grouping import Groups, group


def check_vector(vec: np.ndarray, dims: int, name: str, i: int) -> np.ndarray:
    try:
        v = np.asarray(vec, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise CatalogError(f"anchor vector {i} is not a list of numbers", field="anchors") from None
    if v.shape[0] != dims:
        raise CatalogError(f"anchor vector {i} has {v.shape[0]} values, embedding {name} has {dims} dims",
                           field="anchors")
    if not np.all(np.isfinite(v)):
        raise CatalogError(f"anchor vector {i} contains NaN or Infinity", field="anchors")
    if not np.any(v):
        raise CatalogError(f"anchor vector {i} is all zeros (a zero vector has no direction)", field="anchors")
    v = v / np.abs(v).max()  # in float64 and scaled first: 1e20·v or 1e-25·v keeps v's direction
    return normalize(v / np.linalg.norm(v))


def query_vectors(pos: np.ndarray, neg: np.ndarray, aggregate: str) -> np.ndarray:
    """Anchor vectors → query vectors (PRODUCT.md §3), on the L2-normalised anchors.

    Without negatives: ``mean`` → normalise(avg(pos)); ``max`` → one query per positive anchor.
    Negatives re-rank, they do not cancel: Qdrant's ``average_vector`` recommend strategy,
    ``mean`` → normalise(avg(pos) + (avg(pos) − avg(neg))) = normalise(2·avg(pos) − avg(neg));
    ``max`` → the same per positive p (a group of one): normalise(2·p − avg(neg)), the best score wins.
    The result is zero only when the positives alone cancel (no negatives) or when avg(neg) is exactly
    2·avg(pos) (``mean`` only; it needs ‖avg(pos)‖ ≤ ½): that is the "anchors cancel out" error.
    """
    p = _unit_rows(pos)
    if aggregate == "mean":
        p = p.mean(axis=0, keepdims=True)
    q = 2.0 * p - _unit_rows(neg).mean(axis=0) if len(neg) else p
    norms = np.linalg.norm(q, axis=1)
    if np.any(norms < 1e-6):
        raise CatalogError(
            "the anchors cancel out (their combined direction is zero); remove opposite anchors or negative anchors"
        )
    return normalize(q)


def _unit_rows(vecs: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm, in float64 (the anchors arrive normalised; this keeps it so)."""
    v = np.asarray(vecs, dtype=np.float64)
    if v.ndim != 2 or not len(v):
        return v
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(n == 0, 1.0, n)


# -- ordering and paging ---------------------------------------------------------------------------
def select_order(positions: np.ndarray, scores: np.ndarray, order: str, k: int | None) -> np.ndarray:
    """Indices of the first ``k`` matches by score (``order``), ties by position (= row id)."""
    key = -scores if order == "desc" else scores
    n = len(key)
    if k is None or k >= n:
        return np.lexsort((positions, key))[: (n if k is None else k)]
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    kth = np.partition(key, k - 1)[k - 1]
    better = np.flatnonzero(key < kth)
    tied = np.flatnonzero(key == kth)
    tied = tied[np.argsort(positions[tied], kind="stable")][: k - len(better)]
    sel = np.concatenate([better, tied])
    return sel[np.lexsort((positions[sel], key[sel]))]


SORT_COLUMNS = {"global_key": "d.global_key", "created": "d.created_at", "uniqueness": "u.score"}
_UNIQUENESS_JOIN = " LEFT JOIN uniqueness u ON u.row_id = c.id AND u.embedding_id = TRY_CAST(? AS UUID)"


def _candidates(uuids: np.ndarray, positions: np.ndarray) -> pa.Table:
    """``(i, p, id)``: the index into ``positions``, the position (row-id order) and the row's UUID."""
    raw = np.ascontiguousarray(uuids[positions])
    ids = pa.ExtensionArray.from_storage(
        pa.uuid(), pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(raw), [None, pa.py_buffer(raw)]))
    return pa.table({"i": pa.array(np.arange(len(raw), dtype=np.int64)),
                     "p": pa.array(np.asarray(positions, dtype=np.int64)), "id": ids})


def select_by_column(con, uuids: np.ndarray, positions: np.ndarray, sort: str, order: str,
                     k: int | None, embedding_id: str | None = None) -> np.ndarray:
    """Indices of the first ``k`` of ``positions`` by the data rows' ``sort`` column (``global_key`` or
    ``created``, or ``uniqueness`` under ``embedding_id``) in ``order``, ties by position (= row id);
    rows without a value come last."""
    if len(positions) == 0 or (k is not None and k <= 0):
        return np.empty(0, dtype=np.int64)
    col, direction = SORT_COLUMNS[sort], "DESC" if order == "desc" else "ASC"
    limit = "" if k is None else f" LIMIT {int(k)}"
    join, params = (_UNIQUENESS_JOIN, [embedding_id]) if sort == "uniqueness" else ("", [])
    with registered(con, _candidates(uuids, positions), "search_sorted") as name:
        res = con.execute(f"SELECT c.i FROM {name} c LEFT JOIN datarows d ON d.id = c.id{join} "
                          f"ORDER BY {col} {direction} NULLS LAST, c.p{limit}", params).fetchnumpy()
    return np.asarray(res["i"], dtype=np.int64)


# -- filters and exclusions ------------------------------------------------------------------------
def filter_mask(con, uuids: np.ndarray, positions: np.ndarray, sql: str, params) -> np.ndarray:
    """Which of ``positions`` (rows of the cache) satisfy the compiled filter, as a boolean mask."""
    mask = np.zeros(len(positions), dtype=bool)
    if len(positions) == 0:
        return mask
    with registered(con, _candidates(uuids, positions), "search_candidates") as name:
        res = con.execute(
            f"SELECT c.i FROM {name} c JOIN datarows d ON d.id = c.id WHERE ({sql})", list(params)
        ).fetchnumpy()
    mask[np.asarray(res["i"], dtype=np.int64)] = True
    return mask


def exclude_mask(table: np.ndarray, positions: np.ndarray, row_ids: list[str]) -> np.ndarray:
    """False for the matches that are one of ``row_ids`` (``table`` is sorted)."""
    keep = np.ones(len(positions), dtype=bool)
    if not row_ids or len(table) == 0:
        return keep
    wanted = np.asarray(row_ids, dtype="U36")
    at = np.minimum(np.searchsorted(table, wanted), len(table) - 1)
    excluded = at[table[at] == wanted]
    if len(excluded):
        keep &= ~np.isin(positions, excluded)
    return keep


def matching(matches: Matches, exclude: list[str], where_sql, con_factory, uuids_fn) -> Matches:
    """The matches that are not excluded and satisfy the filter (same table, positions in order)."""
    positions = matches.positions
    keep = exclude_mask(matches.table, positions, exclude)
    if where_sql is not None and len(positions):
        sql, params = where_sql
        with con_factory() as con:
            keep &= filter_mask(con, uuids_fn(), positions, sql, params)
    return matches if keep.all() else matches.subset(keep)


def rank(matches: Matches, order: str, k: int | None, exclude: list[str], where_sql, con_factory, uuids_fn,
         sort: str = "score", group_by: str | None = None, embedding_id: str | None = None
         ) -> tuple[Matches, int, Groups | None]:
    """Apply exclusion and the filter, keep each group's best row (``group_by``, :mod:`.grouping`), then
    order by ``sort``; returns the ordered first ``k`` (as :class:`Matches`), the total (rows, or groups)
    and the groups of the returned rows (None without ``group_by``)."""
    kept = matching(matches, exclude, where_sql, con_factory, uuids_fn)
    groups = None
    if group_by is not None and len(kept):
        with con_factory() as con:
            kept, groups = group(con, _candidates(uuids_fn(), kept.positions), kept, group_by)
    elif group_by is not None:
        groups = Groups(np.empty(0, np.int64), [])
    if sort == "score":
        idx = select_order(kept.positions, kept.scores, order, k)
    else:
        with con_factory() as con:
            idx = select_by_column(con, uuids_fn(), kept.positions, sort, order, k, embedding_id)
    return kept.subset(idx), len(kept) + matches.unlisted, None if groups is None else groups.subset(idx)
