"""The :class:`Labeling` service: label-by-similarity (PRODUCT.md §4), its evaluation and review.

The rule itself is :mod:`catalog.labeling.rule`; this service finds the rows to label, loads the
cached vectors and the labeled pool, applies the rule and, on request, saves the suggestions.
"""

from __future__ import annotations

import numpy as np

from ..engine.knn import engine_neighbours
from ..errors import CatalogError
from ..labels.rules import global_keys, slice_row_ids
from ..search import SearchResult
from ..slices import Slice
from .evaluate import DEFAULT_RESULTS as EVAL_RESULTS
from .evaluate import Evaluation, evaluate, grid_params
from .review import ReviewReport, apply_review
from .rule import (DEFAULT_RESULTS, DEFAULT_THRESHOLD, LabelBySimilarityResult, LabelSuggestion, Neighbor, Pool,
                   RowSuggestions, build_pool, cache_positions, check_params, label_scores, neighbours, suggest_mask)


class Labeling:
    """Label-by-similarity on one catalog.

    ``store``: the Store; ``refs``: the RowRefs resolver; ``embeddings``: anything with
    ``get_embedding(ref)``; ``cache``: the vector cache (``load(emb)``, ``load_keys(emb)``);
    ``labels``: the :class:`catalog.labels.Labels` service (the labeled pool, and every write);
    ``slices``: anything with ``get_slice(name)`` returning an object with ``row_ids()``;
    ``engines``: the :class:`catalog.engine.Engines` service (``backend="qdrant"``), or None.
    """

    def __init__(self, store, refs, embeddings, cache, labels, slices, engines=None):
        self._store = store
        self._refs = refs
        self._embeddings = embeddings
        self._cache = cache
        self._labels = labels
        self._slices = slices
        self._engines = engines

    def _query_row_ids(self, emb, rows, slice) -> list[str]:
        """Row ids to label ("unlabeled": rows with a vector in ``emb`` and no label at all)."""
        if slice is not None:
            if rows is not None:
                raise CatalogError("give the rows to label either as `rows` or as `slice`, not both", field="slice")
            return slice_row_ids(self._slices, slice)
        if rows is None:
            raise CatalogError("no rows to label; give ids, a slice, a search result or \"unlabeled\"", field="rows")
        if isinstance(rows, str) and rows == "unlabeled":
            with self._store.connect() as con:
                found = con.execute(
                    "SELECT CAST(v.row_id AS VARCHAR) FROM vectors v WHERE v.embedding_id = ? "
                    "AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.row_id = v.row_id) ORDER BY 1", [emb.id]).fetchall()
            return [r[0] for r in found]
        if isinstance(rows, Slice):
            return list(rows.row_ids())
        if isinstance(rows, SearchResult):
            return [h.id for h in rows.results]
        return self._refs.resolve([rows] if isinstance(rows, str) else list(rows))

    def _pool(self, ids: np.ndarray) -> tuple[Pool, object]:
        lookup = cache_positions(ids)
        return build_pool(self._labels.pool_table(), lookup), lookup

    def label_by_similarity(self, embedding, rows=None, results: int = DEFAULT_RESULTS,
                            threshold: float = DEFAULT_THRESHOLD, top_only: bool = False, save: bool = False,
                            slice=None, backend=None) -> LabelBySimilarityResult:
        """Suggest labels for ``rows`` from their ``results`` nearest labeled rows (PRODUCT.md §4).

        ``rows``: ids/global_keys, a Slice, a SearchResult, or ``"unlabeled"`` (every row with a
        vector in the embedding and no label at all); or ``slice=NAME``. With ``save=True`` the
        suggested labels are written with source ``similarity``, their score and reviewed = false
        (idempotent; a manual or reviewed label is never replaced).

        ``backend``: ``"exact"`` (the local scan; also None and ``"auto"``) or ``"qdrant"`` (the neighbours
        come from the vector engine's current copy, in exact mode, re-scored from the cache: the same
        result; :mod:`catalog.engine.knn`).
        """
        k, threshold = check_params(results, threshold)
        backend = _check_backend(backend)
        emb = self._embeddings.get_embedding(embedding)
        query_ids = self._query_row_ids(emb, rows, slice)
        ids, matrix = self._cache.load(emb)
        pool, lookup = self._pool(ids)
        _check_pool(emb, pool)
        query_ids = list(dict.fromkeys(query_ids))
        params = {"results": k, "threshold": threshold, "top_only": bool(top_only)}
        if not query_ids:
            return LabelBySimilarityResult([], emb.name, k, threshold, bool(top_only), len(pool), params=params)
        qpos = lookup(query_ids)
        if np.any(qpos < 0):
            missing = [r for r, p in zip(query_ids, qpos) if p < 0]
            with self._store.connect() as con:
                keys = global_keys(con, missing[:5])
            shown = ", ".join(repr(keys.get(r, r)) for r in missing[:5])
            shown += f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise CatalogError(
                f"{len(missing)} of the rows to label have no vector in embedding {emb.name}: {shown}", field="rows",
                hint="compute or import their vectors, or leave them out")
        pool_index = np.full(len(ids), -1, dtype=np.int64)
        pool_index[pool.cache_pos] = np.arange(len(pool))
        if backend == "qdrant":
            engine, name, _ = self._engines.searchable(emb, "label-by-similarity cannot use the qdrant backend")
            hit_idx, hit_scores = engine_neighbours(engine, name, matrix, pool, np.asarray(matrix[qpos], np.float32),
                                                    k, query_ids)
        else:
            hit_idx, hit_scores = neighbours(matrix, pool, qpos, k, pool_index[qpos])
        qq, ll, sums = label_scores(hit_idx, hit_scores, pool, k)
        ticked = suggest_mask(qq, sums, threshold, bool(top_only))
        out = self._rows(emb, query_ids, qpos, pool, hit_idx, hit_scores, qq, ll, sums, ticked)
        result = LabelBySimilarityResult(out, emb.name, k, threshold, bool(top_only), len(pool), params=params)
        if save:
            sel = np.nonzero(ticked)[0]
            result.saved = self._labels.save_suggestions(
                [query_ids[qq[j]] for j in sel], [pool.label_names[ll[j]] for j in sel], [float(sums[j]) for j in sel])
        return result

    def _rows(self, emb, query_ids, qpos, pool, hit_idx, hit_scores, qq, ll, sums, ticked) -> list[RowSuggestions]:
        keys = self._cache.load_keys(emb)
        query_keys = keys.get(qpos)
        used = np.unique(hit_idx[hit_idx >= 0])
        hit_keys = dict(zip(used.tolist(), keys.get(pool.cache_pos[used])))
        bounds = np.searchsorted(qq, np.arange(len(query_ids) + 1))
        names = pool.label_names
        out = []
        for i, rid in enumerate(query_ids):
            hits = [Neighbor(str(pool.row_ids[h]), hit_keys[int(h)], float(s))
                    for h, s in zip(hit_idx[i], hit_scores[i]) if h >= 0]
            a, b = bounds[i], bounds[i + 1]
            labels = [LabelSuggestion(names[ll[j]], float(sums[j]), bool(ticked[j])) for j in range(a, b)]
            out.append(RowSuggestions(rid, query_keys[i], hits, labels))
        return out

    def label_vector(self, embedding, vector, results: int = DEFAULT_RESULTS, threshold: float = DEFAULT_THRESHOLD,
                     top_only: bool = False) -> RowSuggestions:
        """Label suggestions for a vector from outside the catalog (an uploaded image's, say), by the
        rule of :meth:`label_by_similarity`; every labeled row can be a neighbour. ``id`` and
        ``global_key`` of the result are None."""
        k, threshold = check_params(results, threshold)
        emb = self._embeddings.get_embedding(embedding)
        q = np.asarray(vector, dtype=np.float64).reshape(-1)
        if q.shape[0] != emb.dims:
            raise CatalogError(f"the query vector has {q.shape[0]} values; embedding {emb.name} has {emb.dims} dims",
                               field="vector")
        norm = float(np.linalg.norm(q))
        if not np.isfinite(norm) or norm == 0.0:
            raise CatalogError("the query vector is zero or not finite", field="vector")
        ids, matrix = self._cache.load(emb)
        pool, _ = self._pool(ids)
        _check_pool(emb, pool)
        hit_idx, hit_scores = neighbours(matrix, pool, None, k, None, queries=(q / norm)[None, :])
        qq, ll, sums = label_scores(hit_idx, hit_scores, pool, k)
        ticked = suggest_mask(qq, sums, threshold, bool(top_only))
        keys = self._cache.load_keys(emb)
        used = hit_idx[0][hit_idx[0] >= 0]
        hit_keys = keys.get(pool.cache_pos[used]) if len(used) else []
        hits = [Neighbor(str(pool.row_ids[h]), key, float(s)) for h, key, s in zip(used, hit_keys, hit_scores[0])]
        labels = [LabelSuggestion(pool.label_names[ll[j]], float(sums[j]), bool(ticked[j])) for j in range(len(qq))]
        return RowSuggestions(None, None, hits, labels)

    def evaluate_label_by_similarity(self, embedding, results=EVAL_RESULTS, thresholds=None) -> Evaluation:
        """Leave-one-out quality of label-by-similarity on the labeled pool, per (k, threshold).

        Returns a :class:`catalog.labeling.evaluate.Evaluation` (``.to_dict()`` for JSON/charts).
        """
        ks, ts = grid_params(results, thresholds)
        emb = self._embeddings.get_embedding(embedding)
        ids, matrix = self._cache.load(emb)
        pool, _ = self._pool(ids)
        return evaluate(emb.name, matrix, pool, ks, ts)

    def apply_review(self, decisions) -> ReviewReport:
        """Write a reviewer's :class:`ReviewDecision`\\ s in one transaction (see
        :mod:`catalog.labeling.review`); returns what was accepted and rejected."""
        return apply_review(self._store, self._refs, self._labels, decisions)


def _check_backend(backend) -> str:
    if backend in (None, "auto", "exact"):
        return "exact"
    if backend != "qdrant":
        raise CatalogError(f"backend {backend!r} is not supported for label-by-similarity; use exact or qdrant",
                           field="backend")
    return backend


def _check_pool(emb, pool) -> None:
    if len(pool) == 0:
        if pool.labeled_rows:
            raise CatalogError(
                f"the labeled pool is empty for embedding {emb.name}: none of the {pool.labeled_rows} rows with "
                "manual or reviewed labels has a vector in it", field="embedding",
                hint="compute or import their vectors first")
        raise CatalogError("the labeled pool is empty: no row has a manual or reviewed label",
                           hint="label some rows first (set labels or import a label file)")
