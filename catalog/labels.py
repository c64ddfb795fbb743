"""Labels on data rows: set, remove, review, read, import and export.

A label is a classification name on a data row with its ``source`` (``manual``: a person gave it;
``similarity``: label-by-similarity suggested it), the suggestion ``score`` (similarity labels only)
and ``reviewed`` (a person confirmed it; manual labels are always reviewed). Manual and reviewed
labels form the *labeled pool* that label-by-similarity learns from; unreviewed suggestions never do.

Writing rules (the same for every path: ``set_labels``, ``import_labels`` and a saved suggestion):
a manual label replaces a suggestion of the same name (it becomes manual and reviewed); a suggestion
never replaces a manual or reviewed label, and re-suggesting a pending one only refreshes its score.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from .errors import CatalogError, NotFound, ValidationError

MAX_LABEL_LENGTH = 100
SOURCES = ("manual", "similarity")
EXPORT_COLUMNS = ("id", "global_key", "label", "source", "score", "reviewed")
POOL_CONDITION = "(source = 'manual' OR reviewed)"


def clean_label(name) -> str:
    """The label name trimmed; raises :class:`CatalogError` for an empty or over-long one."""
    if not isinstance(name, str):
        raise CatalogError(f"label {name!r} is not text; labels are names such as cat")
    text = name.strip()
    if not text:
        raise CatalogError("label name is empty; give a name such as cat")
    if len(text) > MAX_LABEL_LENGTH:
        raise CatalogError(f"label {text[:20]!r}... is {len(text)} characters long; use at most {MAX_LABEL_LENGTH}")
    return text


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


@dataclass
class LabelImportReport:
    labels: int = 0  # label lines written (new or changed)
    rows: int = 0  # distinct data rows touched


# -- the one write path for (row, label, source, score) tuples -----------------------------------
_UPSERT = """
INSERT INTO labels (row_id, label, source, score, reviewed)
SELECT CAST(row_id AS UUID), label, source, score, reviewed FROM incoming_labels
ON CONFLICT (row_id, label) DO UPDATE SET
    source = CASE WHEN excluded.source = 'manual' OR labels.source = 'manual' THEN 'manual' ELSE 'similarity' END,
    score = CASE WHEN excluded.source = 'manual' THEN NULL
                 WHEN labels.source = 'manual' THEN labels.score
                 WHEN labels.reviewed AND NOT excluded.reviewed THEN labels.score
                 ELSE excluded.score END,
    reviewed = labels.reviewed OR excluded.reviewed
"""


def write_labels(con, row_ids, labels, sources, scores, reviewed) -> int:
    """Upsert label tuples inside the caller's transaction; returns how many were new."""
    if not row_ids:
        return 0
    tbl = pa.table({
        "row_id": pa.array(row_ids, pa.string()), "label": pa.array(labels, pa.string()),
        "source": pa.array(sources, pa.string()), "score": pa.array(scores, pa.float64()),
        "reviewed": pa.array(reviewed, pa.bool_()),
    })
    con.register("incoming_labels", tbl)
    try:
        existing = con.execute(
            "SELECT count(*) FROM labels l JOIN incoming_labels i "
            "ON l.row_id = CAST(i.row_id AS UUID) AND l.label = i.label").fetchall()[0][0]
        con.execute(_UPSERT)
    finally:
        con.unregister("incoming_labels")
    return len(row_ids) - existing


def _label_dict(label, source, score, reviewed, created) -> dict:
    return {"label": label, "source": source, "score": score, "reviewed": bool(reviewed),
            "created_at": created.isoformat() if created is not None else None}


class LabelsMixin:
    """Catalog methods for labels."""

    def set_labels(self, row, labels, source: str = "manual", score: float | None = None) -> list[str]:
        """Give ``row`` (id or global_key) the ``labels``; returns the cleaned names.

        ``source="manual"`` (the default) writes reviewed labels that join the labeled pool and
        replaces suggestions of the same name; ``source="similarity"`` writes an unreviewed
        suggestion with ``score`` and never replaces a manual or reviewed label.
        """
        names = list(dict.fromkeys(clean_label(n) for n in _as_list(labels)))
        if not names:
            raise CatalogError("no labels given; name at least one label")
        if source not in SOURCES:
            raise CatalogError(f"label source {source!r} is not known; use manual or similarity")
        if score is not None:
            score = float(score)
            if not (0.0 <= score <= 1.0):
                raise CatalogError(f"label score {score} is outside [0, 1]")
        row_id = self.resolve_row_ids([row])[0]
        manual = source == "manual"
        with self.store.transaction() as con:
            write_labels(con, [row_id] * len(names), names, [source] * len(names),
                         [None if manual else score] * len(names), [manual] * len(names))
        return names

    def remove_labels(self, row, labels=None) -> int:
        """Remove ``labels`` (all of them when None) from ``row`` (or a list of rows); returns the count.

        Naming a label the row does not have is an error and removes nothing.
        """
        row_ids = self.resolve_row_ids(_as_list(row))
        names = None if labels is None else list(dict.fromkeys(clean_label(n) for n in _as_list(labels)))
        with self.store.transaction() as con:
            if names is None:
                n = con.execute(
                    "SELECT count(*) FROM labels WHERE CAST(row_id AS VARCHAR) IN (SELECT unnest(?))", [row_ids]
                ).fetchall()[0][0]
                con.execute("DELETE FROM labels WHERE CAST(row_id AS VARCHAR) IN (SELECT unnest(?))", [row_ids])
                return n
            have = con.execute(
                "SELECT CAST(row_id AS VARCHAR), label FROM labels WHERE CAST(row_id AS VARCHAR) IN (SELECT unnest(?)) "
                "AND label IN (SELECT unnest(?))", [row_ids, names]).fetchall()
            have = set(have)
            missing = [(r, n) for r in row_ids for n in names if (r, n) not in have]
            if missing:
                r, n = missing[0]
                key = self.get_datarows([r])[0]["global_key"]
                raise NotFound(f"data row {key!r} has no label {n!r}; nothing was removed "
                               f"(see its labels with `advtool labels list {key}`)")
            con.execute(
                "DELETE FROM labels WHERE CAST(row_id AS VARCHAR) IN (SELECT unnest(?)) AND label IN (SELECT unnest(?))",
                [row_ids, names])
            return len(have)

    def review_labels(self, rows, accept: bool, labels=None) -> int:
        """Accept (reviewed = true: they join the labeled pool) or reject (delete) the unreviewed
        suggestions on ``rows``; ``labels`` limits it to those names. Returns how many were reviewed.
        """
        row_ids = self.resolve_row_ids(_as_list(rows))
        if not row_ids:
            raise CatalogError("no data rows given to review")
        names = None if labels is None else list(dict.fromkeys(clean_label(n) for n in _as_list(labels)))
        cond = "source = 'similarity' AND NOT reviewed AND CAST(row_id AS VARCHAR) IN (SELECT unnest(?))"
        params: list = [row_ids]
        if names is not None:
            cond += " AND label IN (SELECT unnest(?))"
            params.append(names)
        with self.store.transaction() as con:
            n = con.execute(f"SELECT count(*) FROM labels WHERE {cond}", params).fetchall()[0][0]
            if n == 0:
                what = f" named {', '.join(repr(x) for x in names)}" if names else ""
                raise CatalogError(
                    f"the given data rows have no unreviewed suggestions{what}; "
                    "suggestions come from `advtool label-by-similarity ... --save`")
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
        sql = ("SELECT CAST(row_id AS VARCHAR), label, source, score, reviewed, created_at FROM labels")
        with self.store.connect() as con:
            if rows is None:
                out: dict[str, list[dict]] = {}
                found = con.execute(sql + " ORDER BY row_id, label").fetchall()
            else:
                row_ids = self.resolve_row_ids(_as_list(rows))
                out = {r: [] for r in row_ids}
                found = con.execute(sql + " WHERE CAST(row_id AS VARCHAR) IN (SELECT unnest(?)) ORDER BY row_id, label",
                                    [row_ids]).fetchall()
        for r in found:
            out.setdefault(r[0], []).append(_label_dict(*r[1:]))
        return out

    def label_counts(self) -> dict[str, dict]:
        """``{label: {"rows", "pool", "pending"}}``: rows carrying it, of them in the labeled pool
        (manual or reviewed), and unreviewed suggestions."""
        with self.store.connect() as con:
            found = con.execute(
                f"SELECT label, count(*), count(*) FILTER (WHERE {POOL_CONDITION}), "
                f"count(*) FILTER (WHERE NOT {POOL_CONDITION}) FROM labels GROUP BY label ORDER BY label"
            ).fetchall()
        return {r[0]: {"rows": r[1], "pool": r[2], "pending": r[3]} for r in found}

    # -- files ----------------------------------------------------------------------------------
    def import_labels(self, path) -> LabelImportReport:
        """Import labels from CSV (header with ``id`` and ``label``) or NDJSON (``{"id", "label"}``).

        ``id`` is a data-row id or global_key; a row may appear on several lines. Optional
        ``source``, ``score`` and ``reviewed`` columns (as written by :meth:`export_labels`) are
        honoured, so an export imports back unchanged; without them labels are manual. Every line is
        validated first; on any error nothing is written (:class:`ValidationError` lists the lines).
        """
        from .labels_io import parse_label_file

        path = Path(path)
        if not path.is_file():
            raise CatalogError(f"label file {path} does not exist or is not a file")
        items, errors = parse_label_file(path)
        keys = [it["id"] for it in items]
        resolved = self._labels_resolve_keys(keys) if keys else {}
        for it in items:
            if resolved.get(it["id"]) is None:
                errors.append((it["line"], f"id {it['id']!r} matches no data row (neither an id nor a global_key)"))
        if errors:
            errors.sort(key=lambda e: e[0])
            raise ValidationError(
                f"{path}: {len(errors)} invalid line{'s' if len(errors) != 1 else ''}; nothing was imported",
                errors[:1000], len(errors))
        if not items:
            raise CatalogError(f"label file {path} has no labels; expected lines with an id and a label")
        seen: dict[tuple[str, str], dict] = {}
        for it in items:  # the same (row, label) twice: the later line wins
            seen[(resolved[it["id"]], it["label"])] = it
        tuples = list(seen.items())
        with self.store.transaction() as con:
            n = len(tuples)
            write_labels(con, [k[0] for k, _ in tuples], [k[1] for k, _ in tuples],
                         [it["source"] for _, it in tuples], [it["score"] for _, it in tuples],
                         [it["reviewed"] for _, it in tuples])
        return LabelImportReport(labels=n, rows=len({k[0] for k, _ in tuples}))

    def _labels_resolve_keys(self, keys) -> dict[str, str | None]:
        """``{key: row_id or None}`` for ids or global_keys (one query, no error for unknown ones)."""
        uniq = list(dict.fromkeys(keys))
        tbl = pa.table({"k": pa.array(uniq, pa.string())})
        with self.store.connect() as con:
            con.register("label_keys", tbl)
            try:
                found = con.execute(
                    "SELECT s.k, CAST(coalesce(g.id, i.id) AS VARCHAR) FROM label_keys s "
                    "LEFT JOIN datarows g ON g.global_key = s.k "
                    "LEFT JOIN datarows i ON CAST(i.id AS VARCHAR) = lower(s.k)").fetchall()
            finally:
                con.unregister("label_keys")
        return dict(found)

    def export_labels(self, out, fmt: str = "csv", slice=None) -> int:
        """Write every label (or those of the rows of ``slice``, a name or a Slice) to a text stream.

        Columns: id, global_key, label, source, score, reviewed; sorted by global_key and label.
        Returns the number of labels written.
        """
        if fmt not in ("csv", "ndjson"):
            raise CatalogError(f"export format {fmt!r} is not supported; use csv or ndjson")
        where, params = "", []
        if slice is not None:
            row_ids = self._labels_slice_row_ids(slice)
            where, params = "WHERE CAST(d.id AS VARCHAR) IN (SELECT unnest(?))", [row_ids]
        with self.store.connect() as con:
            found = con.execute(
                "SELECT CAST(d.id AS VARCHAR), d.global_key, l.label, l.source, l.score, l.reviewed "
                f"FROM labels l JOIN datarows d ON d.id = l.row_id {where} ORDER BY d.global_key, l.label",
                params).fetchall()
        if fmt == "csv":
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(EXPORT_COLUMNS)
            for r in found:
                writer.writerow([r[0], r[1], r[2], r[3], "" if r[4] is None else repr(float(r[4])),
                                 "true" if r[5] else "false"])
        else:
            for r in found:
                out.write(json.dumps(dict(zip(EXPORT_COLUMNS, (r[0], r[1], r[2], r[3], r[4], bool(r[5])))),
                                     ensure_ascii=False))
                out.write("\n")
        return len(found)

    def _labels_slice_row_ids(self, slice) -> list[str]:
        """Row ids of a saved slice given by name or as a Slice object."""
        if hasattr(slice, "row_ids"):
            return list(slice.row_ids())
        get_slice = getattr(self, "get_slice", None)
        if get_slice is None:
            raise CatalogError("saved slices are not available in this version of the catalog")
        return list(get_slice(str(slice)).row_ids())

