"""One search, start to finish: checks, anchors → query vectors, backend, filters, order, page.

The score is :mod:`catalog.scoring`'s; backends only say which rows fall in the score range.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..errors import CatalogError
from ..scoring import normalize
from .base import Matches

APPROXIMATE_MIN_ROWS = 200_000  # backend=None: exact below this many vectors, approximate above
BACKEND_NAMES = ("exact", "approximate")


@dataclass
class Hit:
    id: str
    global_key: str
    score: float

    def to_dict(self) -> dict:
        return {"id": self.id, "global_key": self.global_key, "score": self.score}


@dataclass
class SearchResult:
    """``total`` rows matched (score range and filters); ``results`` is the requested page.

    ``backend`` names the backend that answered; ``complete`` is False only when an explicitly
    approximate search may have missed rows (``total`` is then a lower bound).
    """

    total: int
    results: list[Hit] = field(default_factory=list)
    backend: str = "exact"
    complete: bool = True

    def to_dict(self) -> dict:
        return {"total": self.total, "results": [h.to_dict() for h in self.results]}

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)


@dataclass
class _Ranked:
    table: np.ndarray
    positions: np.ndarray  # the requested page (or everything), in order
    scores: np.ndarray
    total: int
    backend: str
    complete: bool


# -- argument checks ------------------------------------------------------------------------------
def _score_arg(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise CatalogError(f"{what} must be a number from 0 to 1, not {value!r}") from None
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise CatalogError(f"{what} {value:g} is outside [0, 1]; scores lie between 0 and 1")
    return value


def check_args(min_score, max_score, aggregate, order, limit, offset, backend):
    lo = _score_arg(min_score, "min score")
    hi = _score_arg(max_score, "max score")
    if lo > hi:
        raise CatalogError(f"min score {lo:g} is greater than max score {hi:g}; give min ≤ max")
    if aggregate not in ("mean", "max"):
        raise CatalogError(f"aggregate {aggregate!r} is not supported; use mean or max")
    if order not in ("desc", "asc"):
        raise CatalogError(f"order {order!r} is not supported; use desc or asc")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 0):
        raise CatalogError(f"limit must be a whole number ≥ 0 (or None for all), not {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, numbers.Integral) or offset < 0:
        raise CatalogError(f"offset must be a whole number ≥ 0, not {offset!r}")
    if backend not in (None, "auto", *BACKEND_NAMES):
        raise CatalogError(f"backend {backend!r} is not supported; use exact or approximate (or leave it out)")
    return lo, hi


def split_anchors(anchors) -> tuple[list[str], list[np.ndarray]]:
    """Row references (ids / global_keys) and raw vectors, from whatever the caller gave."""
    if anchors is None:
        return [], []
    if isinstance(anchors, (str, bytes)):
        anchors = [anchors]
    elif isinstance(anchors, np.ndarray):
        anchors = [anchors] if anchors.ndim == 1 else list(anchors)
    refs, vecs = [], []
    for a in anchors:
        if isinstance(a, bytes):
            a = a.decode()
        if isinstance(a, str):
            if a.strip():
                refs.append(a.strip())
            else:
                raise CatalogError("an anchor is an empty string; give a data row id or global_key")
        elif isinstance(a, np.ndarray) or (isinstance(a, (list, tuple)) and a and all(
                isinstance(x, numbers.Real) and not isinstance(x, bool) for x in a)):
            vecs.append(np.asarray(a))
        else:
            raise CatalogError(f"anchor {a!r} is neither a data row id/global_key nor a vector")
    return refs, vecs


def check_vector(vec: np.ndarray, dims: int, name: str, i: int) -> np.ndarray:
    try:
        v = np.asarray(vec, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise CatalogError(f"anchor vector {i} is not a list of numbers") from None
    if v.shape[0] != dims:
        raise CatalogError(f"anchor vector {i} has {v.shape[0]} values, embedding {name} has {dims} dims")
    if not np.all(np.isfinite(v)):
        raise CatalogError(f"anchor vector {i} contains NaN or Infinity")
    if not np.any(v):
        raise CatalogError(f"anchor vector {i} is all zeros (a zero vector has no direction)")
    return normalize(v)


def query_vectors(pos: np.ndarray, neg: np.ndarray, aggregate: str) -> np.ndarray:
    """PRODUCT.md §3: ``mean`` → normalise(mean(pos) − mean(neg)); ``max`` → one query per anchor."""
    shift = neg.mean(axis=0) if len(neg) else 0.0
    if aggregate == "mean":
        q = pos.astype(np.float64).mean(axis=0, keepdims=True) - shift
    else:
        q = pos.astype(np.float64) - shift
    norms = np.linalg.norm(q, axis=1)
    if np.any(norms < 1e-6):
        raise CatalogError(
            "the anchors cancel out (their combined direction is zero); remove opposite anchors or negative anchors"
        )
    return normalize(q)


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


# -- filters -----------------------------------------------------------------------------------------
def compile_where(where):
    if where is None:
        return None
    try:
        from ..filters import compile_filter
    except ImportError:
        raise CatalogError("metadata filters (where) are not available in this installation") from None
    return compile_filter(where, alias="d")


def filter_mask(con, uuids: np.ndarray, positions: np.ndarray, sql: str, params) -> np.ndarray:
    """Which of ``positions`` (rows of the cache) satisfy the compiled filter, as a boolean mask."""
    mask = np.zeros(len(positions), dtype=bool)
    if len(positions) == 0:
        return mask
    raw = np.ascontiguousarray(uuids[positions])
    ids = pa.ExtensionArray.from_storage(
        pa.uuid(), pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(raw), [None, pa.py_buffer(raw)]))
    name = f"search_candidates_{id(raw):x}"
    con.register(name, pa.table({"i": pa.array(np.arange(len(raw), dtype=np.int64)), "id": ids}))
    try:
        res = con.execute(
            f"SELECT c.i FROM {name} c JOIN datarows d ON d.id = c.id WHERE ({sql})", list(params)
        ).fetchnumpy()
    finally:
        con.unregister(name)
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


def rank(matches: Matches, order: str, k: int | None, exclude: list[str], where_sql, con_factory, uuids_fn):
    """Apply exclusion and the filter, then order; returns the ordered first ``k`` and the total."""
    positions, scores = matches.positions, matches.scores
    keep = exclude_mask(matches.table, positions, exclude)
    if where_sql is not None and len(positions):
        sql, params = where_sql
        with con_factory() as con:
            keep &= filter_mask(con, uuids_fn(), positions, sql, params)
    if not keep.all():
        positions, scores = positions[keep], scores[keep]
    idx = select_order(positions, scores, order, k)
    return positions[idx], scores[idx], len(positions)
