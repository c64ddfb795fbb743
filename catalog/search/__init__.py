"""Similarity search: anchors, a score range, aggregation, filters and paging (PRODUCT.md §3).

``Catalog.search`` returns a :class:`SearchResult` (``total`` and a page of :class:`Hit`);
``Catalog.search_row_ids`` returns every matching row id, in order. Backends (``exact``: a full
L1 scan of the vector cache; ``approximate``: an IVF-Flat L1 index) sit behind
:class:`catalog.search.base.Backend`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import vector_cache
from ..errors import CatalogError
from .approximate import ApproximateBackend, build_index, index_info
from .base import Backend, Matches, Query
from .exact import ExactBackend
from .query import (APPROXIMATE_MIN_ROWS, BACKEND_NAMES, Hit, SearchResult, check_args, check_vector,
                    compile_where, query_vectors, rank, split_anchors)

__all__ = ["SearchMixin", "SearchResult", "Hit", "Backend", "Matches", "Query", "ExactBackend",
           "ApproximateBackend", "APPROXIMATE_MIN_ROWS", "BACKEND_NAMES"]


def _names(rows: list[dict]) -> str:
    shown = ", ".join(repr(r["global_key"]) for r in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


@dataclass
class _Plan:
    backend: Backend
    exact: ExactBackend
    auto: bool  # chosen by size: fall back to the exact scan when the approximate one is incomplete


class SearchMixin:
    """Catalog methods for similarity search."""

    def search(self, embedding, anchors=(), negative_anchors=(), min_score=0.85, max_score=1.0,
               aggregate="mean", where=None, limit=50, offset=0, order="desc", include_anchors=False,
               text=None, image=None, backend=None) -> SearchResult:
        """Rows of ``embedding`` scoring within ``[min_score, max_score]`` against the anchors.

        Anchors are data-row ids or global_keys, or raw vectors; ``text``/``image`` add an anchor
        encoded by the embedding's model. ``limit=None`` returns every match.
        """
        positions, scores, total, table, name, complete, emb = self._run_search(
            embedding, anchors, negative_anchors, min_score, max_score, aggregate, where, limit, offset,
            order, include_anchors, text, image, backend)
        ids = table[positions].tolist()
        keys = vector_cache.load_keys(self, emb).get(positions) if ids else []
        hits = [Hit(i, k, float(s)) for i, k, s in zip(ids, keys, scores)]
        return SearchResult(total=total, results=hits, backend=name, complete=complete)

    def search_row_ids(self, embedding, anchors=(), negative_anchors=(), min_score=0.85, max_score=1.0,
                       aggregate="mean", where=None, limit=None, offset=0, order="desc", include_anchors=False,
                       text=None, image=None, backend=None) -> list[str]:
        """Every matching row id in result order (``limit``/``offset`` are ignored: no paging)."""
        positions, _, _, table, _, _, _ = self._run_search(
            embedding, anchors, negative_anchors, min_score, max_score, aggregate, where, None, 0,
            order, include_anchors, text, image, backend)
        return table[positions].tolist()

    def build_search_index(self, embedding) -> dict:
        """Build the approximate (IVF-Flat L1) index of an embedding now; returns its description."""
        emb = self.get_embedding(embedding)
        exact = ExactBackend(self, emb)
        if exact.size == 0:
            raise CatalogError(f"embedding {emb.name} has no vectors; import or compute them first")
        return build_index(self, emb, exact)

    def search_index_info(self, embedding) -> dict | None:
        """The approximate index's description (nlist, calibrated nprobe, measured recall) or None."""
        return index_info(self, self.get_embedding(embedding))

    # -- internals -------------------------------------------------------------------------------
    def _run_search(self, embedding, anchors, negative_anchors, min_score, max_score, aggregate, where,
                    limit, offset, order, include_anchors, text, image, backend):
        lo, hi = check_args(min_score, max_score, aggregate, order, limit, offset, backend)
        refs, raw = split_anchors(anchors)
        neg_refs, neg_raw = split_anchors(negative_anchors)
        if not refs and not raw and text is None and image is None:
            raise CatalogError(
                "search needs at least one anchor: a data row id or global_key (--anchor), --text or --image")
        where_sql = compile_where(where)
        emb = self._search_embedding(embedding)
        if text is not None or image is not None:
            raw.append(self._encode_anchor(emb, text, image))
        plan = self._plan(emb, backend)
        rows = self._anchor_rows(plan.exact, emb, refs)
        neg_rows = self._anchor_rows(plan.exact, emb, neg_refs)
        be = plan.backend
        pos_vecs = self._anchor_vectors(be, emb, rows, raw, "anchor")
        neg_vecs = self._anchor_vectors(be, emb, neg_rows, neg_raw, "negative anchor")
        queries = query_vectors(pos_vecs, neg_vecs, aggregate)
        k = None if limit is None else offset + limit
        matches = be.search(Query(queries, lo, hi, limit_hint=k, order=order))
        if not matches.complete and plan.auto:
            be = plan.exact
            matches = be.search(Query(queries, lo, hi, limit_hint=k, order=order))
        exclude = [] if include_anchors else [r["id"] for r in rows + neg_rows]
        positions, scores, total = rank(matches, order, k, exclude, where_sql, self.store.connect,
                                        lambda: vector_cache.load_uuids(self, emb))
        return positions[offset:], scores[offset:], total, matches.table, be.name, matches.complete, emb

    def _encode_anchor(self, emb, text, image) -> np.ndarray:
        if text is not None and image is not None:
            raise CatalogError("give either a text or an image query, not both")
        if not hasattr(self, "encode_query"):
            raise CatalogError("text and image queries need the embedding models, which this installation lacks")
        vec = self.encode_query(emb, text=text, image=image)
        return np.asarray(vec, dtype=np.float32)

    def _plan(self, emb, choice) -> _Plan:
        exact = ExactBackend(self, emb)
        auto = choice in (None, "auto")
        if choice == "approximate" or (auto and exact.size >= APPROXIMATE_MIN_ROWS and self._index_ready(emb)):
            return _Plan(ApproximateBackend(self, emb, exact), exact, auto)
        return _Plan(exact, exact, False)

    @staticmethod
    def _index_ready(emb) -> bool:
        """Automatic choice: only an index that was built already (builds take minutes at 1M rows)
        and whose calibration found a small share of lists enough."""
        info = index_info(emb.catalog, emb)
        return bool(info and info.get("version") == emb.version and info.get("useful"))

    def _anchor_vectors(self, be, emb, rows, raw, what) -> np.ndarray:
        vecs, missing = be.vectors([r["id"] for r in rows]) if rows else (np.empty((0, emb.dims), np.float32), [])
        if missing:
            lost = [r for r in rows if r["id"] in set(missing)]
            raise CatalogError(
                f"{what}{'s' if len(lost) > 1 else ''} {_names(lost)} {'have' if len(lost) > 1 else 'has'} no vector "
                f"in embedding {emb.name}; import or compute {'their vectors' if len(lost) > 1 else 'its vector'} "
                "first, or choose other anchors")
        extra = [check_vector(v, emb.dims, emb.name, i) for i, v in enumerate(raw, start=1)]
        if extra:
            vecs = np.vstack([vecs, np.vstack(extra)]) if len(vecs) else np.vstack(extra)
        return np.asarray(vecs, dtype=np.float32).reshape(-1, emb.dims)

    # -- lookups that need no database connection while nothing was committed ----------------------
    def _db_token(self):
        """Changes whenever anything is committed to the catalog file (DuckDB appends to its WAL,
        and a checkpoint rewrites the file)."""
        out = []
        for p in (self.store.path, self.store.path.with_name(self.store.path.name + ".wal")):
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    def _lookup_memo(self) -> dict:
        token = self._db_token()
        memo = getattr(self, "_search_lookup_memo", None)
        if memo is None or memo.get("token") != token:
            memo = {"token": token, "embeddings": {}}
            self._search_lookup_memo = memo
        return memo

    def _search_embedding(self, ref):
        memo = self._lookup_memo()
        key = ref.id if hasattr(ref, "id") else str(ref)
        emb = memo["embeddings"].get(key)
        if emb is None:
            emb = memo["embeddings"][key] = self.get_embedding(ref)
        return emb

    def _anchor_rows(self, exact: ExactBackend, emb, refs) -> list[dict]:
        """``[{"id", "global_key"}]`` for anchor references: ids of cached rows are resolved from the
        cache; anything else (global keys, rows without a vector, unknown refs) from the database."""
        if not refs:
            return []
        lowered = [r.lower() for r in refs]
        pos, missing = exact.positions(lowered)
        if missing:
            return [{"id": r["id"], "global_key": r["global_key"]} for r in self.get_datarows(refs)]
        keys = vector_cache.load_keys(self, emb).get(pos)
        out, seen = [], set()
        for rid, key in zip(lowered, keys):
            if rid not in seen:
                seen.add(rid)
                out.append({"id": rid, "global_key": key})
        return out
