"""The :class:`Catalog`: one DuckDB file and the operations on it — the composition root.

Each concept is a service that receives what it uses (the store, the vector cache, other services)
in its constructor; this class builds them in dependency order and its public methods delegate.
"""

from __future__ import annotations

import numpy as np

from .batches import Batch, Batches
from .collections import Collections
from .datarows import DataRows, ImportReport
from .datarows.deletion import DataRowDeletion, DeleteReport
from .embeddings import Embedding, Embeddings
from .engine import Engines
from .labeling import Evaluation, LabelBySimilarityResult, Labeling, ReviewDecision, ReviewReport
from .labels import LabelImportReport, Labels
from .maps import Maps
from .metadata import Metadata
from .models import ComputeReport, Models
from .quality import DEFAULT_MIN_SCORE, Comparer, DuplicateReport, Duplicates, Uniqueness
from .search import Searcher, SearchSpec, split_call
from .shared import SharedSearches
from .slices import Slices, save_call
from .store import RowRefs, Store
from .tokens import Tokens
from .vectors import VectorCache, VectorExport, VectorExportReport, VectorImport


class Catalog:
    """An embedding catalog stored in one DuckDB file (``path``, else ``$CATALOG_DB``, else ``./catalog.duckdb``)."""

    def __init__(self, path=None, lock_timeout: float | None = None):
        self.store = Store(path, lock_timeout=lock_timeout)
        self.refs = RowRefs(self.store)
        # -- vectors and embeddings --
        self.cache = VectorCache(self.store)
        self.importer = VectorImport(self.store, self.cache)
        self.exporter = VectorExport(self.store)
        self.embeddings = Embeddings(self.store, self.cache, self.importer, self.exporter)
        # -- data rows --
        self.datarows = DataRows(self.store, self.refs, self.embeddings, self.importer)
        self.deletion = DataRowDeletion(self.store, self.refs, self.cache)
        # -- models --
        self.models = Models(self.store, self.embeddings, self.importer)
        # -- search, and the vector engine it scales out on --
        self.engines = Engines(self.store, self.cache, self.embeddings)  # cat.engines.set_engine / sync / status
        self.uniqueness = Uniqueness(self.store, self.cache, self.embeddings)  # cat.uniqueness.compute / outliers
        self.searcher = Searcher(self.store, self.cache, self.embeddings, self.datarows, self.models, self.engines,
                                 self.uniqueness)
        # -- slices --
        self.slices = Slices(self.store, self.refs, self.embeddings, self.searcher, self.datarows)
        self.shared = SharedSearches(self.store)
        self.maps = Maps(self.store, self.cache, self.embeddings, self.searcher)  # cat.maps.compute / get / select_in_polygon / export
        # -- labels and labeling --
        self.labels = Labels(self.store, self.refs, self.slices)
        self.labeling = Labeling(self.store, self.refs, self.embeddings, self.cache, self.labels, self.slices,
                                 self.engines)
        # -- batches and metadata --
        self.batches = Batches(self.store, self.refs, self.datarows, self.slices)
        self.metadata = Metadata(self.store, self.refs, self.slices)
        # -- duplicates, leaks and scores between two rows --
        self.quality = Duplicates(self.store, self.embeddings, self.searcher, self.slices)  # .save(report, name)
        self.comparer = Comparer(self.datarows, self.embeddings, self.searcher, self.models)
        self.tokens = Tokens(self.store)  # cat.tokens.create_token / list_tokens / revoke_token / check_token
        self.collections = Collections(self.store, self.datarows, self.deletion, self.models, self.importer,
                                       self.embeddings, self.searcher, self.metadata, self.labeling)

    @property
    def path(self):
        return self.store.path

    def atomic(self):
        """Group several library calls into one transaction: all of them take effect, or none.

        ``with cat.atomic(): cat.set_labels(...); cat.review_labels(...)``. The catalog file stays
        locked for the duration, so keep the block short."""
        return self.store.transaction()

    def reading(self):
        """Group several library calls on one open connection: the file is opened once for the block
        instead of once per call (tens of milliseconds each). ``with cat.reading(): rows = ...; labels = ...``.
        Other processes wait for the block to end before they write, so keep it short."""
        return self.store.connect()

    def __repr__(self) -> str:
        return f"Catalog({str(self.store.path)!r})"

    # -- vectors and embeddings ----------------------------------------------------------------------
    def create_embedding(self, name: str, dims: int) -> Embedding:
        return self.embeddings.create_embedding(name, dims)

    def get_embeddings(self) -> list[Embedding]:
        return self.embeddings.get_embeddings()

    def get_embedding_by_id(self, id: str) -> Embedding:  # noqa: A002 - the Labelbox SDK's keyword
        return self.embeddings.get_embedding_by_id(id)

    def get_embedding_by_name(self, name: str) -> Embedding:
        """By name, or by Labelbox's display name of an off-the-shelf one (``Image Embedding (CLIP ViT-B/32)``)."""
        return self.embeddings.get_embedding_by_name(name)

    def get_embedding(self, ref) -> Embedding:
        """An embedding by id or name (or an :class:`Embedding`, returned refreshed)."""
        return self.embeddings.get_embedding(ref)

    def embedding_counts(self) -> dict[str, int]:
        """Vector count per embedding id."""
        return self.embeddings.embedding_counts()

    def rows_with_vectors(self, embedding, row_ids) -> set[str]:
        """Which of ``row_ids`` have a vector in ``embedding`` (only those can be anchors there)."""
        return self.embeddings.rows_with_vectors(embedding, row_ids)

    def delete_embedding(self, ref) -> str:
        return self.embeddings.delete_embedding(ref)

    def export_vectors(self, embedding, out, fmt: str = "ndjson", slice=None, rows=None,
                       progress=None) -> VectorExportReport:
        """Write the embedding's stored vectors (those of ``slice``'s rows, or of ``rows``, when given):
        ``ndjson`` in the import format to a text stream or a path (``.gz`` compresses), or ``npy`` to
        a path (float32 matrix, ids in ``<name>.ids.json``); import reads them back bit for bit."""
        return self.embeddings.export_vectors(embedding, out, fmt, rows=self.slices.rows_of(slice, rows),
                                              progress=progress)

    # -- data rows -----------------------------------------------------------------------------------
    def import_datarows(self, paths, metadata_file=None, progress=None, copy_files: bool = False) -> ImportReport:
        """Import images, folders, .zip archives and record files (JSON lines or arrays, inline vectors); one transaction.
        ``progress(done, total)`` after each path; ``copy_files`` keeps copies of local images (uploads)."""
        return self.datarows.import_datarows(paths, metadata_file, progress=progress, copy_files=copy_files)

    def count_datarows(self) -> int:
        return self.datarows.count_datarows()

    def list_datarows(self, limit: int = 50, offset: int = 0) -> list[dict]:
        return self.datarows.list_datarows(limit, offset)

    def get_datarows(self, refs) -> list[dict]:
        """Rows for ids or global_keys, in the order given; unknown ones raise :class:`NotFound`."""
        return self.datarows.get_datarows(refs)

    def get_datarow(self, ref) -> dict:
        return self.datarows.get_datarow(ref)

    def resolve_row_ids(self, refs) -> list[str]:
        """Data-row ids for ids or global_keys (order kept, duplicates dropped)."""
        return self.datarows.resolve_row_ids(refs)

    def iter_datarows(self, batch: int = 10_000):
        return self.datarows.iter_datarows(batch)

    def export_datarows(self, out, fmt: str = "ndjson") -> int:
        """Write every row (id, global_key, media_type, row_data, metadata) to a text stream."""
        return self.datarows.export_datarows(out, fmt)

    def delete_datarows(self, refs) -> DeleteReport:
        """Delete rows (ids or global_keys) with their vectors, labels and batch entries; one transaction."""
        return self.deletion.delete_datarows(refs)

    # -- models --------------------------------------------------------------------------------------
    def list_models(self) -> list[dict]:
        """Each model's name, id, dims, media type and whether it can run here (and why not)."""
        return self.models.list_models()

    def compute_embeddings(self, model, all=False, device=None, batch_size=None, progress=None, weights=None,
                           pretrained=None) -> ComputeReport:
        """Embed the rows of ``model``'s media type that have no vector yet (every one with ``all``).

        ``device``: ``auto`` (default: CUDA when present), ``cpu`` or ``cuda``. ``progress(done, total)``
        is called after every batch. ``weights``: a checkpoint file or model folder instead of the
        usual places; ``pretrained``: the open_clip tag for clip-vit-b-32 (default ``openai``).
        Raises :class:`CatalogError` before any work when the model cannot run here.
        """
        return self.models.compute_embeddings(model, all=all, device=device, batch_size=batch_size,
                                              progress=progress, weights=weights, pretrained=pretrained)

    def query_model(self, embedding) -> tuple[str, bool] | None:
        """``(model name, loaded in this process)`` for prompts in ``embedding``; None for a custom one."""
        return self.models.query_model(embedding)

    def encode_query(self, embedding, text=None, image=None) -> np.ndarray:
        """The unit vector of a text prompt or an outside image in ``embedding``'s space, shape ``(dims,)``.

        Text goes through the CLIP text tower (clip-vit-b-32) or the sentence model (text
        embeddings); ``image`` (a path, bytes or a PIL image) through the image model.
        """
        return self.models.encode_query(embedding, text=text, image=image)


    # -- search --------------------------------------------------------------------------------------
    def search(self, spec, *args, **kwargs):
        """Rows scoring within the spec's range: ``search(SearchSpec, Page=None, backend=None)``, or the keyword
        form ``search(embedding, anchors=(), negative_anchors=(), min_score=None, max_score=None, ...,
        limit=50, offset=0, backend=None)`` whose other keywords are :class:`SearchSpec`'s fields.
        ``sort``: ``"score"``, ``"global_key"``, ``"created"`` or ``"uniqueness"`` (ties by row id; it never
        changes which rows match); ``group_by`` (a metadata field) returns each group's best row and the total
        and page count groups; with ``aggregate="max"`` each hit's ``anchor`` names the anchor that scored it;
        ``limit=None`` returns every match. Without a range it is chosen automatically (0.85–1 when a row
        scores there, else the best 100 rows); ``result.score_range`` says which and why."""
        return self.searcher.search(*split_call(spec, args, kwargs))

    def score_distribution(self, spec, *args, bins: int = 50, **kwargs):
        """The scores of every row the query matches, whatever its range (:class:`ScoreDistribution`:
        histogram over [0, 1] in ``bins`` bins, total, best score, best 100 scores); a SearchSpec or
        the keyword form of :meth:`search` without paging. One exact scan; the filter applies."""
        return self.searcher.score_distribution(split_call(spec, args, kwargs, paged=False)[0], bins=bins)

    def search_row_ids(self, spec, *args, **kwargs) -> list[str]:
        """Every matching row id in result order, in either form of :meth:`search` (no paging)."""
        return self.searcher.row_ids(*split_call(spec, args, kwargs, paged=False))

    def build_search_index(self, embedding) -> dict:
        """Build the approximate (IVF-Flat L1) index of an embedding now; returns its description."""
        return self.searcher.build_index(embedding)

    def search_index_info(self, embedding) -> dict | None:
        """The approximate index's description (nlist, calibrated nprobe, measured recall) or None."""
        return self.searcher.index_info(embedding)

    # -- duplicates and scores ------------------------------------------------------------------------
    def duplicates(self, embedding=None, min_score: float = DEFAULT_MIN_SCORE, where=None, split_field=None,
                   keep: str = "first", exact_only: bool = False, approximate=None, progress=None) -> DuplicateReport:
        """Groups of near duplicates (every pair scoring ≥ ``min_score`` linked; exact all-pairs search, or
        the IVF lists with measured pair recall when ``approximate`` or large) or, with ``exact_only``, of
        identical content (hashes); ``split_field`` lists leaks. See :mod:`catalog.quality.duplicates`."""
        return self.quality.duplicates(embedding, min_score, where, split_field, keep, exact_only, approximate,
                                       progress)

    def score(self, a, b, embedding=None) -> float:
        """The score between ``a`` and ``b`` (row ids/global_keys, ``{"text": ...}`` or ``{"image": ...}``):
        the number a search from ``a`` shows for ``b``. See :mod:`catalog.quality.compare`."""
        return self.comparer.compare(a, b, embedding).score

    # -- slices --------------------------------------------------------------------------------------
    def save_slice(self, name, spec=None, *args, **kwargs):
        """Save a search under ``name``: ``save_slice(name, SearchSpec, description=None, replace=False)``
        or the keyword form ``save_slice(name, embedding=None, anchors=(), negative_anchors=(),
        min_score=None, max_score=None, aggregate="mean", where=None, order=None, description=None,
        replace=False, text=None, include_anchors=False, sort="score")``. Without an embedding (and anchors) the slice
        is a pure filter slice; a ``text`` prompt is encoded again whenever the slice is read;
        ``replace=True`` updates an existing slice in place. Without a range the slice stores the range
        the automatic choice resolves to now (so its rows do not shift as rows are added)."""
        return self.slices.save_slice(name, *save_call(spec, args, kwargs))

    def share_search(self, spec) -> str:
        """Store a search (a :class:`SearchSpec`; not an image prompt) under a short key made from its
        content, for links that would be too long otherwise; the same search always gets the same key."""
        return self.shared.share(spec)

    def shared_search(self, key) -> SearchSpec:
        """The search stored under ``key`` by :meth:`share_search`."""
        return self.shared.shared(key)

    def get_slices(self):
        return self.slices.get_slices()

    def get_slice(self, name):
        """The slice named ``name`` (or with that id)."""
        return self.slices.get_slice(name)

    def delete_slice(self, name) -> None:
        return self.slices.delete_slice(name)

    def export_slice(self, name, out, fmt: str = "ndjson") -> int:
        """Write every row of the slice (id, global_key, score, metadata, labels) in the slice's order."""
        return self.slices.export_slice(name, out, fmt)

    def filter_datarows(self, where=None, limit: int | None = 50, offset: int = 0, sort: str = "global_key",
                        order: str | None = None):
        """Rows matching ``where`` (None: all) as a ``SearchResult`` with score None, by ``sort``
        (``"global_key"`` A–Z by default, ``"created"`` newest first; ``order`` desc/asc), ties by row id."""
        return self.slices.filter_datarows(where, limit, offset, sort, order)

    def filter_row_ids(self, where=None, sort: str = "global_key", order: str | None = None) -> list[str]:
        """Ids of every row matching ``where``, in the order of :meth:`filter_datarows`."""
        return self.slices.filter_row_ids(where, sort, order)

    # -- labels and labeling -------------------------------------------------------------------------
    def set_labels(self, row, labels, source: str = "manual", score: float | None = None) -> list[str]:
        """Give ``row`` (id or global_key) the ``labels``; returns the cleaned names.

        ``source="manual"`` (the default) writes reviewed labels that join the labeled pool and
        replaces suggestions of the same name; ``source="similarity"`` writes an unreviewed
        suggestion with ``score`` and never replaces a manual or reviewed label.
        """
        return self.labels.set_labels(row, labels, source=source, score=score)

    def remove_labels(self, row, labels=None) -> int:
        """Remove ``labels`` (all of them when None) from ``row`` (or a list of rows); returns the count.

        Naming a label the row does not have is an error and removes nothing.
        """
        return self.labels.remove_labels(row, labels)

    def add_labels(self, rows, labels, source: str = "manual", score: float | None = None) -> int:
        """Give every one of ``rows`` the ``labels`` in one transaction (all or nothing); returns the new pairs."""
        return self.labels.add_labels(rows, labels, source=source, score=score)

    def remove_labels_from(self, rows, labels) -> int:
        """Remove ``labels`` from those of ``rows`` that carry them (one transaction); returns the count."""
        return self.labels.remove_labels_from(rows, labels)

    def review_labels(self, rows, accept: bool, labels=None) -> int:
        """Accept (reviewed = true: they join the labeled pool) or reject (delete) the unreviewed
        suggestions on ``rows``; ``labels`` limits it to those names. Returns how many were reviewed.
        """
        return self.labels.review_labels(rows, accept, labels)

    def get_labels(self, rows=None) -> dict[str, list[dict]]:
        """``{row_id: [{"label", "source", "score", "reviewed", "created_at"}]}`` for ``rows``
        (ids or global_keys; every one is a key, with ``[]`` when it has no labels), or for every
        labeled row when ``rows`` is None. Labels are sorted by name.
        """
        return self.labels.get_labels(rows)

    def label_counts(self) -> dict[str, dict]:
        """``{label: {"rows", "pool", "pending"}}``: rows carrying it, of them in the labeled pool
        (manual or reviewed), and unreviewed suggestions."""
        return self.labels.label_counts()

    def import_labels(self, path) -> LabelImportReport:
        """Import labels from CSV (header with ``id`` and ``label``) or NDJSON (``{"id", "label"}``).

        ``id`` is a data-row id or global_key; a row may appear on several lines. Optional
        ``source``, ``score`` and ``reviewed`` columns (as written by :meth:`export_labels`) are
        honoured, so an export imports back unchanged; without them labels are manual. Every line is
        validated first; on any error nothing is written (:class:`ValidationError` lists the lines).
        """
        return self.labels.import_labels(path)

    def export_labels(self, out, fmt: str = "csv", slice=None) -> int:
        """Write every label (or the labels of ``slice``'s rows) as id, global_key, label, source, score,
        reviewed, sorted by global_key and label; returns the number written."""
        return self.labels.export_labels(out, fmt, slice)

    def label_by_similarity(self, embedding, rows=None, results: int = 10, threshold: float = 0.30,
                            top_only: bool = False, save: bool = False, slice=None,
                            backend=None) -> LabelBySimilarityResult:
        """Suggest labels for ``rows`` (refs, a Slice, a SearchResult, ``"unlabeled"``; or ``slice=``) from their
        ``results`` nearest labeled rows (PRODUCT.md §4); ``save`` writes them unreviewed; ``backend``: exact
        or qdrant (the vector engine; the same result). See the service."""
        return self.labeling.label_by_similarity(embedding, rows, results, threshold, top_only, save, slice, backend)

    def label_vector(self, embedding, vector, results: int = 10, threshold: float = 0.30, top_only: bool = False):
        """Label suggestions (a :class:`RowSuggestions`) for an outside vector, by the rule of label_by_similarity."""
        return self.labeling.label_vector(embedding, vector, results, threshold, top_only)

    def evaluate_label_by_similarity(self, embedding, results=(1, 3, 5, 10), thresholds=None) -> Evaluation:
        """Leave-one-out quality of label-by-similarity on the labeled pool, per (k, threshold)."""
        return self.labeling.evaluate_label_by_similarity(embedding, results, thresholds)

    def apply_review(self, decisions: list[ReviewDecision]) -> ReviewReport:
        """Apply a review (one :class:`ReviewDecision` per row) in one transaction: ticked suggestions are
        accepted, added labels written as manual, the other unreviewed suggestions rejected."""
        return self.labeling.apply_review(decisions)

    # -- batches and metadata ------------------------------------------------------------------------
    def create_batch(self, name, project, slice=None, ids=None, priority: int = 3) -> Batch:
        """Freeze the rows of ``slice`` or ``ids`` into a new batch; rows already in a batch of ``project``
        are skipped and listed in ``batch.skipped`` (nothing is created if every row is)."""
        return self.batches.create_batch(name, project, slice=slice, ids=ids, priority=priority)

    def get_batches(self, project=None) -> list[Batch]:
        return self.batches.get_batches(project)

    def get_batch(self, name, project) -> Batch:
        return self.batches.get_batch(name, project)

    def delete_batch(self, name, project) -> None:
        """Remove the batch; its rows become free to join another batch of the project."""
        return self.batches.delete_batch(name, project)

    def export_batch(self, name, project, out, fmt: str = "ndjson") -> int:
        """Write every row of the batch: id, global_key, media_type, row_data, metadata, labels."""
        return self.batches.export_batch(name, project, out, fmt)

    def set_metadata(self, values: dict, *, slice=None, ids=None, where=None) -> int:
        """Set each dotted key of ``values`` on the rows of exactly one of ``slice``, ``ids`` or ``where``
        (``{}``: every row), all or nothing; returns the number of rows changed."""
        return self.metadata.set_metadata(values, slice=slice, ids=ids, where=where)

    def unset_metadata(self, keys, *, slice=None, ids=None, where=None) -> int:
        """Remove each dotted key from every targeted row (missing keys are fine); returns the rows targeted."""
        return self.metadata.unset_metadata(keys, slice=slice, ids=ids, where=where)
