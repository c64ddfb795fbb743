"""The :class:`Labels` service: set, remove, review, read, import and export labels on data rows.

The rules (names, sources, the labeled pool, the write path) are in :mod:`catalog.labels.rules`;
label files are read by :mod:`catalog.labels.io` and written by :mod:`catalog.export`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CatalogError, NotFound, ValidationError
from ..export import check_format, write_records
from ..store import scalar
from .io import parse_label_file
from .rules import (EXPORT_COLUMNS, POOL_CONDITION, SOURCES, as_list, check_score, clean_labels, global_keys,
                    label_dict, slice_row_ids, write_labels)

IN_ROWS = "CAST(row_id AS VARCHAR) IN (SELECT unnest(?))"


@dataclass
class LabelImportReport:
    labels: int = 0  # label lines written (new or changed)
    rows: int = 0  # distinct data rows touched


def _checked(labels, source, score) -> tuple[list[str], float | None]:
    """The cleaned label names and score of a write (:class:`CatalogError` for none, a bad source or score)."""
    names = clean_labels(labels)
    if not names:
        raise CatalogError("no labels given; name at least one label", field="labels")
    if source not in SOURCES:
        raise CatalogError(f"label source {source!r} is not known; use manual or similarity", field="source")
    return names, check_score(score)


class Labels:
    """Labels of one catalog.

    ``store``: the :class:`catalog.store.Store`; ``refs``: the :class:`catalog.store.RowRefs` that
    resolves ids and global_keys; ``slices``: anything with ``get_slice(name)`` returning an object
    with ``row_ids()`` (for exports limited to a saved slice).
    """

    def __init__(self, store, refs, slices):
        self._store = store
        self._refs = refs
        self._slices = slices

    def set_labels(self, row, labels, source: str = "manual", score: float | None = None) -> list[str]:
        """Give ``row`` (id or global_key) the ``labels``; returns the cleaned names.

        ``source="manual"`` (the default) writes reviewed labels that join the labeled pool and
        replaces suggestions of the same name; ``source="similarity"`` writes an unreviewed
        suggestion with ``score`` and never replaces a manual or reviewed label.
        """
        names, score = _checked(labels, source, score)
        row_id = self._refs.resolve([row])[0]
        manual = source == "manual"
        with self._store.transaction() as con:
            write_labels(con, [row_id] * len(names), names, [source] * len(names),
                         [None if manual else score] * len(names), [manual] * len(names))
        return names

    def remove_labels(self, row, labels=None) -> int:
        """Remove ``labels`` (all of them when None) from ``row`` (or a list of rows); returns the count.

        Naming a label the row does not have is an error and removes nothing.
        """
        row_ids = self._refs.resolve(as_list(row))
        names = None if labels is None else clean_labels(labels)
        with self._store.transaction() as con:
            if names is None:
                n = scalar(con, f"SELECT count(*) FROM labels WHERE {IN_ROWS}", [row_ids])
                con.execute(f"DELETE FROM labels WHERE {IN_ROWS}", [row_ids])
                return n
            have = set(con.execute(
                f"SELECT CAST(row_id AS VARCHAR), label FROM labels WHERE {IN_ROWS} AND label IN (SELECT unnest(?))",
                [row_ids, names]).fetchall())
            missing = [(r, n) for r in row_ids for n in names if (r, n) not in have]
            if missing:
                r, n = missing[0]
                key = global_keys(con, [r]).get(r, r)
                raise NotFound(f"data row {key!r} has no label {n!r}; nothing was removed", field="labels",
                               hint="list the row's labels to see them")
            con.execute(f"DELETE FROM labels WHERE {IN_ROWS} AND label IN (SELECT unnest(?))", [row_ids, names])
            return len(have)

    def add_labels(self, rows, labels, source: str = "manual", score: float | None = None) -> int:
        """Give every one of ``rows`` (ids or global_keys) the ``labels`` in one transaction: all of
        them are written, or (on any error, e.g. an unknown row) none. Same rules as :meth:`set_labels`;
        returns how many (row, label) pairs are new (pairs the rows already had are kept, not counted).
        """
        names, score = _checked(labels, source, score)
        row_ids = self._refs.resolve(as_list(rows), field="ids")
        if not row_ids:
            raise CatalogError("no data rows given to label", field="ids")
        manual = source == "manual"
        n = len(row_ids) * len(names)
        with self._store.transaction() as con:
            return write_labels(con, [r for r in row_ids for _ in names], names * len(row_ids), [source] * n,
                                [None if manual else score] * n, [manual] * n)

    def remove_labels_from(self, rows, labels) -> int:
        """Remove the ``labels`` from those of ``rows`` that carry them, in one transaction (rows
        without them are left alone; an unknown row removes nothing); returns how many were removed."""
        names = clean_labels(labels)
        if not names:
            raise CatalogError("no labels given; name at least one label to remove", field="labels")
        row_ids = self._refs.resolve(as_list(rows), field="ids")
        if not row_ids:
            raise CatalogError("no data rows given", field="ids")
        cond = f"{IN_ROWS} AND label IN (SELECT unnest(?))"
        with self._store.transaction() as con:
            n = scalar(con, f"SELECT count(*) FROM labels WHERE {cond}", [row_ids, names])
            con.execute(f"DELETE FROM labels WHERE {cond}", [row_ids, names])
        return n

    def review_labels(self, rows, accept: bool, labels=None) -> int:
        """Accept (reviewed = true: they join the labeled pool) or reject (delete) the unreviewed
        suggestions on ``rows``; ``labels`` limits it to those names. Returns how many were reviewed.
        """
        row_ids = self._refs.resolve(as_list(rows))
        if not row_ids:
            raise CatalogError("no data rows given to review", field="rows")
        names = None if labels is None else clean_labels(labels)
        cond = f"source = 'similarity' AND NOT reviewed AND {IN_ROWS}"
        params: list = [row_ids]
        if names is not None:
            cond += " AND label IN (SELECT unnest(?))"
            params.append(names)
        with self._store.transaction() as con:
            n = scalar(con, f"SELECT count(*) FROM labels WHERE {cond}", params)
            if n == 0:
                what = f" named {', '.join(repr(x) for x in names)}" if names else ""
                raise CatalogError(f"the given data rows have no unreviewed suggestions{what}", field="rows",
                                   hint="suggestions are written by label-by-similarity with save")
            if accept:
                con.execute(f"UPDATE labels SET reviewed = true WHERE {cond}", params)
            else:
                con.execute(f"DELETE FROM labels WHERE {cond}", params)
        return n

    def get_labels(self, rows=None) -> dict[str, list[dict]]:
        """``{row_id: [{"label", "source", "score", "reviewed", "created_at"}]}`` for ``rows``
        (ids or global_keys; every one is a key, with ``[]`` when it has no labels), or for every
        labeled row when ``rows`` is None. Labels are sorted by name.
        """
        sql = "SELECT CAST(row_id AS VARCHAR), label, source, score, reviewed, created_at FROM labels"
        if rows is None:
            out: dict[str, list[dict]] = {}
            with self._store.connect() as con:
                found = con.execute(sql + " ORDER BY row_id, label").fetchall()
        else:
            row_ids = self._refs.resolve(as_list(rows))
            out = {r: [] for r in row_ids}
            with self._store.connect() as con:
                found = con.execute(sql + f" WHERE {IN_ROWS} ORDER BY row_id, label", [row_ids]).fetchall()
        for r in found:
            out.setdefault(r[0], []).append(label_dict(*r[1:]))
        return out

    def label_counts(self) -> dict[str, dict]:
        """``{label: {"rows", "pool", "pending"}}``: rows carrying it, of them in the labeled pool
        (manual or reviewed), and unreviewed suggestions."""
        with self._store.connect() as con:
            found = con.execute(
                f"SELECT label, count(*), count(*) FILTER (WHERE {POOL_CONDITION}), "
                f"count(*) FILTER (WHERE NOT {POOL_CONDITION}) FROM labels GROUP BY label ORDER BY label"
            ).fetchall()
        return {r[0]: {"rows": r[1], "pool": r[2], "pending": r[3]} for r in found}

    def pool_table(self):
        """The labeled pool as an Arrow table ``(r: row id, label)``, sorted by row id and label."""
        with self._store.connect() as con:
            return con.sql(f"SELECT CAST(row_id AS VARCHAR) AS r, label FROM labels WHERE {POOL_CONDITION} "
                           "ORDER BY r, label").to_arrow_table()

    def save_suggestions(self, row_ids, labels, scores) -> int:
        """Write unreviewed ``similarity`` suggestions (one per row id, label and score, by the
        writing rules); returns how many were new."""
        row_ids, labels = list(row_ids), list(labels)
        if not row_ids:
            return 0
        with self._store.transaction() as con:
            return write_labels(con, row_ids, labels, ["similarity"] * len(row_ids),
                                [float(s) for s in scores], [False] * len(row_ids))

    # -- files ----------------------------------------------------------------------------------
    def import_labels(self, path) -> LabelImportReport:
        """Import labels from CSV (header with ``id`` and ``label``) or NDJSON (``{"id", "label"}``).

        ``id`` is a data-row id or global_key; a row may appear on several lines. Optional
        ``source``, ``score`` and ``reviewed`` columns (as written by :meth:`export_labels`) are
        honoured, so an export imports back unchanged; without them labels are manual. Every line is
        validated first; on any error nothing is written (:class:`ValidationError` lists the lines).
        """
        path = Path(path)
        if not path.is_file():
            raise CatalogError(f"label file {path} does not exist or is not a file", field="path")
        items, errors = parse_label_file(path)
        resolved = self._refs.lookup([it["id"] for it in items])
        for it in items:
            if resolved.get(it["id"]) is None:
                errors.append((it["line"], f"id {it['id']!r} matches no data row (not an id, global_key, Labelbox id or external_id)"))
        if errors:
            errors.sort(key=lambda e: e[0])
            raise ValidationError(
                f"{path}: {len(errors)} invalid line{'s' if len(errors) != 1 else ''}; nothing was imported",
                errors[:1000], len(errors), field="path")
        if not items:
            raise CatalogError(f"label file {path} has no labels; expected lines with an id and a label", field="path")
        seen: dict[tuple[str, str], dict] = {}
        for it in items:  # the same (row, label) twice: the later line wins
            seen[(resolved[it["id"]], it["label"])] = it
        tuples = list(seen.items())
        with self._store.transaction() as con:
            write_labels(con, [k[0] for k, _ in tuples], [k[1] for k, _ in tuples],
                         [it["source"] for _, it in tuples], [it["score"] for _, it in tuples],
                         [it["reviewed"] for _, it in tuples])
        return LabelImportReport(labels=len(tuples), rows=len({k[0] for k, _ in tuples}))

    def export_labels(self, out, fmt: str = "csv", slice=None) -> int:
        """Write every label (or those of the rows of ``slice``, a name or a Slice) to a text stream.

        Columns: id, global_key, label, source, score, reviewed; sorted by global_key and label.
        Returns the number of labels written.
        """
        check_format(fmt, ("csv", "ndjson"))
        where, params = "", []
        if slice is not None:
            where, params = "WHERE CAST(d.id AS VARCHAR) IN (SELECT unnest(?))", [slice_row_ids(self._slices, slice)]
        with self._store.connect() as con:
            found = con.execute(
                "SELECT CAST(d.id AS VARCHAR), d.global_key, l.label, l.source, l.score, l.reviewed "
                f"FROM labels l JOIN datarows d ON d.id = l.row_id {where} ORDER BY d.global_key, l.label",
                params).fetchall()
        records = (dict(zip(EXPORT_COLUMNS, (r[0], r[1], r[2], r[3], None if r[4] is None else float(r[4]),
                                              bool(r[5])))) for r in found)
        return write_records(out, records, fmt, EXPORT_COLUMNS, lineterminator="\n")
