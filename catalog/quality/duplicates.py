"""Duplicates and leaks: exact (content hash) and near (score ≥ τ) duplicate groups of data rows.

- **Content** (``exact_only``): rows whose content hashes are equal (:mod:`catalog.store.hashes`:
  image bytes, normalised text) form a group; one GROUP BY over the stored hashes.
- **Near**: every pair of rows of an embedding with ``score ≥ min_score`` (PRODUCT.md §3, inclusive)
  is an edge; groups are the connected components. Exact by default (the native kernel's all-pairs
  range search, :mod:`catalog.search.l1_range`); approximate (:mod:`.approximate`, the IVF lists)
  when asked for, or by default above ``APPROXIMATE_ABOVE`` rows; an approximate run measures its
  pair recall against the exact search on a sample and reports it.
- **Leaks**: with ``split_field``, the pairs at or above the threshold whose two rows both have that
  metadata field and differ in it (train/test leaks). At most ``MAX_LEAKS_LISTED`` are listed (best
  first); ``leak_pairs`` counts them all.

``where`` narrows the rows first (a filter, as in search). Rows without a vector (near) or without a
content hash (content: files gone, URLs) are left out and counted in ``without``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

import faiss
import numpy as np
import pyarrow as pa

from ..errors import CatalogError
from ..filters import compile_filter
from ..filters.parse import json_path
from ..scoring import l1_from_score, score_from_l1
from ..search import SearchSpec
from ..search.backends import ExactBackend
from ..search.l1_range import MAX_PAIRS, range_pairs_l1
from ..store import registered
from ..store.hashes import update_hashes
from ..vectors.cache import find_rows
from .approximate import approximate_pairs
from .groups import KEEPS, DuplicateGroup, DuplicateReport, Leak, Member, components, pick

DEFAULT_MIN_SCORE = 0.95
APPROXIMATE_ABOVE = 250_000   # rows: above this an unspecified run is approximate (exact takes minutes)
MAX_LEAKS_LISTED = 10_000
DEFAULT_TAG = "duplicates"
_WIDEN = 1 + 1e-6             # the kernel's distance cap is widened a hair; scores then decide (inclusive)


def check_args(min_score, keep) -> float:
    if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not 0 < min_score <= 1:
        raise CatalogError(f"the minimum score must be a number in (0, 1], not {min_score!r}", field="min_score")
    if keep not in KEEPS:
        raise CatalogError(f"keep must be one of {', '.join(KEEPS)}, not {keep!r}", field="keep")
    return float(min_score)


class Duplicates:
    """Duplicate groups over one catalog: ``store``, ``embeddings`` resolve embeddings, ``searcher``
    gives the exact backend (the vector cache) the search itself uses; ``slices`` saves the results."""

    def __init__(self, store, embeddings, searcher, slices):
        self.store = store
        self.embeddings = embeddings
        self.searcher = searcher
        self.slices = slices

    def update_hashes(self, retry: bool = True) -> dict[str, int]:
        """Hash the rows without a content hash and (``retry``) those whose file was missing or unreadable;
        returns how many got each status."""
        with self.store.transaction() as con:
            return update_hashes(con, retry=retry)

    def duplicates(self, embedding=None, min_score: float = DEFAULT_MIN_SCORE, where=None, split_field=None,
                   keep: str = "first", exact_only: bool = False, approximate: bool | None = None,
                   progress=None) -> DuplicateReport:
        min_score = check_args(min_score, keep)
        path = json_path(split_field, field="split_field") if split_field is not None else None
        sql, params = compile_filter(where)
        started = time.perf_counter()
        if exact_only:
            report = self._content(sql, params, keep, path)
        else:
            if embedding is None:
                raise CatalogError("near duplicates need an embedding (or ask for content duplicates only)",
                                   field="embedding")
            report = self._near(self.embeddings.get_embedding(embedding), min_score, sql, params, keep, path,
                                approximate, progress)
        report.split_field = split_field
        report.groups.sort(key=lambda g: (-g.size, g.representative.global_key))  # biggest first
        report.seconds = time.perf_counter() - started
        return report

    # -- content duplicates ----------------------------------------------------------------------------
    def _content(self, sql, params, keep, path) -> DuplicateReport:
        with self.store.connect() as con:
            waiting = con.execute("SELECT count(*) FROM datarows d WHERE NOT EXISTS "
                                  "(SELECT 1 FROM content_hashes h WHERE h.row_id = d.id)").fetchone()[0]
        if waiting:  # rows imported before hashes existed, beyond the migration's bound
            self.update_hashes(retry=False)
        with self.store.connect() as con:
            hashed, without = con.execute(f"""SELECT count(h.hash), count(*) - count(h.hash) FROM datarows d
                                             LEFT JOIN content_hashes h ON h.row_id = d.id AND h.status = 'ok'
                                             WHERE {sql}""", params).fetchone()
            found = con.execute(f"""SELECT list(CAST(d.id AS VARCHAR) ORDER BY d.created_at, d.global_key),
                                           list(d.global_key ORDER BY d.created_at, d.global_key)
                                    FROM datarows d JOIN content_hashes h ON h.row_id = d.id AND h.status = 'ok'
                                    WHERE {sql} GROUP BY h.hash HAVING count(*) > 1""", params).fetchall()
        pairs = sum(len(g[0]) * (len(g[0]) - 1) // 2 for g in found)
        if pairs > MAX_PAIRS:
            raise CatalogError(f"the content duplicates form more than {MAX_PAIRS:,} pairs; narrow the rows with a "
                               "filter", field="where")
        report = DuplicateReport("content", None, None, keep, rows=hashed, pairs=pairs, without=without)
        ids, i, j, start = [], [], [], 0
        for gids, gkeys in found:  # the first imported row first: it is the one kept
            report.groups.append(DuplicateGroup([Member(r, k, 1.0) for r, k in zip(gids, gkeys)]))
            a, b = np.triu_indices(len(gids), 1)
            i.append(a + start), j.append(b + start)
            ids.extend(gids)
            start += len(gids)
        if path is not None and found:
            ii, jj = np.concatenate(i), np.concatenate(j)
            self._leaks(report, np.array(ids, dtype="U36"), ii, jj, np.ones(len(ii)), path)
        return report

    # -- near duplicates -------------------------------------------------------------------------------
    def _near(self, emb, min_score, sql, params, keep, path, approximate, progress) -> DuplicateReport:
        exact = ExactBackend.open(self.searcher.context, emb)
        ids_all, mat = exact.ids, exact.matrix
        with self.store.connect() as con:
            wanted = [r[0] for r in con.execute(f"SELECT CAST(d.id AS VARCHAR) FROM datarows d WHERE {sql}",
                                                params).fetchall()]
        pos = find_rows(ids_all, wanted)
        pos = np.sort(pos[pos >= 0])
        ids = ids_all[pos]
        if approximate is None:
            approximate = len(pos) > APPROXIMATE_ABOVE
        max_dist = l1_from_score(min_score, emb.dims) * _WIDEN
        report = DuplicateReport("approximate" if approximate else "exact", emb.name, min_score, keep,
                                 rows=len(pos), pairs=0, without=len(wanted) - len(pos))
        if approximate:
            i, j, d, report.pair_recall, report.recall_sample = approximate_pairs(
                self.store, emb, exact, pos, max_dist, progress)
        else:
            i, j, d = range_pairs_l1(np.asarray(mat[pos], dtype=np.float32), max_dist, progress=progress)
        scores = score_from_l1(d, emb.dims)
        ok = scores >= min_score
        i, j, scores = i[ok], j[ok], scores[ok]
        report.pairs = len(i)
        parts = components(len(pos), i, j)
        if not parts:
            return report
        grouped = np.concatenate(parts)
        keys, rank = self._ranks(ids, grouped)
        for g in parts:
            vecs = np.asarray(mat[pos[g]], dtype=np.float32)
            rep = pick(g, keep, rank, vecs)
            at = int(np.flatnonzero(g == rep)[0])
            s = score_from_l1(faiss.pairwise_distances(vecs[at:at + 1], vecs, faiss.METRIC_L1)[0], emb.dims)
            order = [at] + sorted((n for n in range(len(g)) if n != at), key=lambda n: (-s[n], keys[g[n]]))
            report.groups.append(DuplicateGroup([Member(str(ids[g[n]]), keys[g[n]], float(s[n])) for n in order]))
        if path is not None:
            self._leaks(report, ids, i, j, scores, path)
        return report

    def _ranks(self, ids, grouped) -> tuple[dict, np.ndarray]:
        """global_keys of the ``grouped`` nodes, and every node's import rank (created_at, global_key)."""
        tbl = pa.table({"n": pa.array(grouped, pa.int64()), "id": pa.array(ids[grouped].tolist(), pa.string())})
        with self.store.connect() as con, registered(con, tbl, "dup_nodes") as t:
            rows = con.execute(f"""SELECT t.n, d.global_key FROM {t} t JOIN datarows d ON d.id = CAST(t.id AS UUID)
                                   ORDER BY d.created_at, d.global_key""").fetchall()
        rank = np.full(len(ids), np.iinfo(np.int64).max, dtype=np.int64)
        keys = {}
        for r, (n, key) in enumerate(rows):
            rank[n] = r
            keys[n] = key
        return keys, rank

    def _leaks(self, report, ids, i, j, scores, path) -> None:
        nodes = np.unique(np.concatenate([i, j]))
        tbl = pa.table({"n": pa.array(nodes, pa.int64()), "id": pa.array(ids[nodes].tolist(), pa.string())})
        with self.store.connect() as con, registered(con, tbl, "dup_leaks") as t:
            rows = con.execute(f"""SELECT t.n, d.global_key, CAST(json_extract(d.metadata, ?) AS VARCHAR)
                                   FROM {t} t JOIN datarows d ON d.id = CAST(t.id AS UUID)""", [path]).fetchall()
        value = {n: v for n, _, v in rows}
        key = {n: k for n, k, _ in rows}
        va = np.array([value.get(int(a)) for a in i], dtype=object)
        vb = np.array([value.get(int(b)) for b in j], dtype=object)
        differ = np.array([x is not None and y is not None and x != y for x, y in zip(va, vb)], dtype=bool)
        report.leak_pairs = int(differ.sum())
        at = np.flatnonzero(differ)
        at = at[np.lexsort((j[at], i[at], -np.asarray(scores)[at]))][:MAX_LEAKS_LISTED]
        report.leaks = [Leak(Member(str(ids[i[n]]), key[int(i[n])], float(scores[n])),
                             Member(str(ids[j[n]]), key[int(j[n])], float(scores[n])), float(scores[n]),
                             json.loads(va[n]), json.loads(vb[n])) for n in at]

    # -- saving ----------------------------------------------------------------------------------------
    def save(self, report: DuplicateReport, name: str, tag: str = DEFAULT_TAG, where=None,
             replace: bool = False) -> tuple:
        """Tag the grouped rows and save two filter slices; returns them ``(groups, deduplicated)``.

        Every member gets the metadata ``{tag: {"group": <representative's global_key>, "keep":
        <bool>, "score": <score to it>}}`` (earlier ``tag`` values are removed from every row first, so the
        tag describes this run only). Slice ``name`` holds the grouped rows (``tag.group`` exists) and
        slice ``name-deduplicated`` every row but the dropped duplicates (``tag.keep`` is not false), both
        within ``where``. They are filter slices: rows imported later join the deduplicated slice until
        a new run tags them. One transaction: on any error nothing is tagged or saved."""
        path = json_path(tag, field="tag")
        if "." in tag:
            raise CatalogError(f"the tag {tag!r} must be one metadata key (no dots)", field="tag")
        ids, patches = [], []
        for g in report.groups:
            for n, m in enumerate(g.members):
                ids.append(m.id)
                patches.append(json.dumps({tag: {"group": g.representative.global_key, "keep": n == 0,
                                                 "score": round(m.score, 6)}}))
        in_groups = {"$and": [where, {f"{tag}.group": {"$exists": True}}]} if where else {
            f"{tag}.group": {"$exists": True}}
        kept = {"$and": [where, {f"{tag}.keep": {"$ne": False}}]} if where else {f"{tag}.keep": {"$ne": False}}
        what = (f"near duplicates in {report.embedding} at score ≥ {report.min_score} ({report.method} search)"
                if report.embedding else "rows with identical content")
        with self.store.transaction() as con:
            con.execute("UPDATE datarows SET metadata = json_merge_patch(metadata, CAST(? AS JSON)) "
                        "WHERE json_exists(metadata, ?)", [json.dumps({tag: None}), path])
            if ids:
                tbl = pa.table({"id": pa.array(ids, pa.string()), "patch": pa.array(patches, pa.string())})
                with registered(con, tbl, "dup_tags") as t:
                    con.execute(f"""UPDATE datarows SET metadata = json_merge_patch(datarows.metadata,
                                        CAST(t.patch AS JSON)), updated_at = now()
                                    FROM {t} t WHERE datarows.id = CAST(t.id AS UUID)""")
            groups = self.slices.save_slice(name, SearchSpec(where=in_groups),
                                            f"rows in {len(report.groups)} groups of {what}", replace)
            dedup = self.slices.save_slice(f"{name}-deduplicated", SearchSpec(where=kept),
                                           f"one row per group of {what} (keep {report.keep})", replace)
        return groups, dedup
